"""The `rag` command: a thin typer layer over the library, one module per command group.

    common.py      the app, options, one-line errors, progress
    indexing.py    index, remove, documents
    following.py   follow
    asking.py      ask, batch, models, chat
    evaluating.py  eval
    serving.py     serve
    benching.py    bench retrieval | index | speed | answers | http
    configuring.py --config, config: the settings file and variables as every command's defaults
"""

# isort: skip_file
from rag.app.cli.common import app

# Imported for what they do: each registers its commands on `app`, in the order `rag --help` lists them.
from rag.app.cli import indexing, following, asking, evaluating, serving, benching, configuring  # noqa: E402, F401

__all__ = ["app"]
