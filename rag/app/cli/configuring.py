"""`rag --config FILE …` and `rag config`: the settings file and variables as every command's
defaults (app/settings.py), and what each command would start with."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from rag.app import settings as rag_settings
from rag.app.cli.common import app, fail, friendly, out
from rag.errors import RagError


@app.callback()
def settings_file(ctx: typer.Context,
                  config: Optional[Path] = typer.Option(None, "--config", help="Settings file (default: $RAG_CONFIG, "
                                                        "else ./rag.toml where there is one); flags override it.")):
    # Runs before the command's own options are read: their defaults come from the settings.
    try:
        loaded, _ = rag_settings.load(config, rag_settings.tables_of(ctx.command))
        ctx.default_map = rag_settings.default_map(loaded, ctx.command)
    except RagError as exc:
        fail(str(exc))
    ctx.obj = {"config": config}


@app.command("config", epilog="Example: $ rag config serve")
@friendly
def show_config(ctx: typer.Context,
                command: Optional[str] = typer.Argument(None, help="One command (serve, follow, bench_http, …); "
                                                        "default: every one the settings change.")):
    """Print the settings each command starts with (rag.toml, RAG_* variables, defaults), secrets masked."""
    group = ctx.parent.command
    path = rag_settings.config_path((ctx.obj or {}).get("config"))
    commands = rag_settings.commands(group)
    if command is not None and command not in commands:
        fail(f"no command {command!r}; one of: {', '.join(sorted(commands))}")
    out.print(f"# the settings file: {path or 'none'}; flags given to a command override what is shown", soft_wrap=True)
    for table, cmd in sorted(commands.items()):
        if command not in (None, table) or table == "config":
            continue
        sub = typer.Context(cmd, info_name=table)
        sub.default_map = defaults_of(ctx.parent.default_map or {}, table)
        lines = [effective_line(sub, param) for param in cmd.params if param.name != "help"]
        changed = [line for line, source in lines if source != "default"]
        if command is None and not changed:
            continue
        out.print(f"\n[{table}]", markup=False)
        for line, _ in (lines if command is not None else [(line, s) for line, s in lines if s != "default"]):
            out.print(line, soft_wrap=True, markup=False)


def defaults_of(default_map: dict, table: str) -> dict | None:
    """A command's part of click's nested default_map: `bench_http` is under bench, then http."""
    if table in default_map:
        return default_map[table]
    group, _, name = table.partition("_")
    return (default_map.get(group) or {}).get(name) if name else None


def effective_line(ctx: typer.Context, param) -> tuple[str, str]:
    """`key = value  # where it comes from`, as the command would see it with no flag given."""
    key = rag_settings.key_of(param)
    value, source = param.resolve_envvar_value(ctx), "environment"
    if value is None:
        value, source = ctx.lookup_default(param.name, call=False), "settings"
    if value is None:
        value, source = param.get_default(ctx, call=False), "default"
    if value is not None and source != "default":
        value = param.process_value(ctx, value)  # as the command reads it: "9000" from a variable is 9000
    value = rag_settings.shown(key, value)
    text = "unset" if value is None else repr(value).replace("'", '"')
    return f"{key} = {text}  # {source}", source
