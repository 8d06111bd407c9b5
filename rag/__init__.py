"""rag: offline question answering over German news articles with checked citations.

The subpackages are layers, each importing only those below it (docs/architecture.md):
text -> models -> store -> search -> answer -> quality -> app. `errors` and `fileio` are shared
ground for all of them.
"""

__version__ = "0.1.0"
