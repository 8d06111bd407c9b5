"""Settings in one place: a `rag.toml` and `RAG_*` variables give every command's options their
defaults; a flag on the command line overrides both (click's `default_map`, read by pydantic-settings).

    # rag.toml (the working directory's; or --config FILE, or $RAG_CONFIG)
    index = "postgresql://rag@db/news"        # a top-level key: every command with that option
    llm_url = "http://gpu-1:8080"
    [serve]                                   # a table: one command (`bench_http` for `rag bench http`)
    port = 8000
    max_queue = 16
    metrics_port = 9464
    [follow]
    sources = ["https://www.tagesschau.de/index~rss2.xml"]
    every = "15m"

Keys are the options' long names with `_` for `-` (`--max-queue`: `max_queue`). A variable wins
over the file: `RAG_INDEX`, `RAG_LLM_URL`, `RAG_SERVE__PORT=8001` (table and key joined by `__`).
Each value is checked by the option it sets, so a wrong key or value is one line naming it. Where
an option reads a variable of its own (`RAG_API_KEY` for `--api-key`), that variable wins over the
file too. `rag config` prints what each command would start with, secrets masked.

>>> from_toml('port = 1', "x.toml")
Traceback (most recent call last):
...
rag.errors.RagError: x.toml: `port` is not a setting every command has; put it in a table, such as [serve] (top-level keys: embedder, index, k, llm_timeout, llm_url, min_support, model, retrieval)
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError, create_model
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from rag.errors import RagError, redact

CONFIG_FILE = Path("rag.toml")
# Keys a rag.toml may hold at its top level: options that mean the same in every command having them.
COMMON_KEYS = ("index", "model", "embedder", "retrieval", "k", "min_support", "llm_url", "llm_timeout")
SECRET_WORDS = ("key", "password", "token", "secret")


class Settings(BaseSettings):
    """What a rag.toml and the RAG_* variables hold: the common keys, and (`with_tables`) a table
    per command."""

    model_config = SettingsConfigDict(env_prefix="RAG_", env_nested_delimiter="__", extra="forbid",
                                      env_ignore_empty=True)  # RAG_K="" is unset, not a wrong number
    index: str | None = None
    model: str | None = None
    embedder: str | None = None
    retrieval: str | None = None
    k: int | None = None
    min_support: float | None = None
    llm_url: str | None = None
    llm_timeout: float | None = None

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, **_) -> tuple:
        return env_settings, init_settings  # the variables over the file (given as init values)


def with_tables(tables: list[str]) -> type[Settings]:
    """Settings with a table for each of these commands (the CLI's own list, so none is missed)."""
    return create_model("CommandSettings", __base__=Settings, **{table: (dict[str, Any], {}) for table in tables})


def config_path(given: Path | None) -> Path | None:
    """The file to read: the one given, else $RAG_CONFIG, else ./rag.toml where there is one."""
    if given is not None:
        return given
    if os.environ.get("RAG_CONFIG"):
        return Path(os.environ["RAG_CONFIG"])
    return CONFIG_FILE if CONFIG_FILE.is_file() else None


def from_toml(text: str, origin: str, tables: list[str] = ()) -> Settings:
    """The settings of a rag.toml's text (and the RAG_* variables); RagError in one line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RagError(f"{origin} is not valid TOML: {exc}") from None
    for key, value in data.items():
        if not isinstance(value, dict) and key not in COMMON_KEYS:
            raise RagError(f"{origin}: `{key}` is not a setting every command has; put it in a table, such as "
                           f"[serve] (top-level keys: {', '.join(sorted(COMMON_KEYS))})")
    try:
        return with_tables(list(tables))(**data)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise RagError(f"{origin}: {where}: {problem['msg']}") from None


def load(given: Path | None, tables: list[str] = ()) -> tuple[Settings, str | None]:
    """The settings in force, with a table for each of `tables`, and the file they came from (None:
    variables only)."""
    path = config_path(given)
    if path is None:
        return from_toml("", "the RAG_* variables", tables), None
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RagError(f"cannot read the settings file {path}: {exc.strerror or exc}") from None
    return from_toml(text, str(path), tables), str(path)


def tables_of(group) -> list[str]:
    """The table names a rag.toml may hold for `group`'s commands (`index` is the common key)."""
    return [table for table in commands(group) if table not in COMMON_KEYS and table != "config"]


def commands(group, prefix: str = "") -> dict:
    """Every command under `group` by its table name: `serve`, `bench_http`."""
    found = {}
    for name, command in group.commands.items():
        if hasattr(command, "commands"):  # a group: `rag bench`
            found |= commands(command, f"{prefix}{name}_")
        else:
            found[prefix + name] = command
    return found


def key_of(param) -> str:
    """An option's key in a rag.toml: its long name with `_` for `-`; an argument's own name."""
    longs = [opt for opt in param.opts if opt.startswith("--")]
    return longs[0][2:].replace("-", "_") if longs else param.name


def default_map(settings: Settings, group) -> dict[str, Any]:
    """click's default_map for `group`: per command, its parameters' values from the settings,
    each checked by the parameter it sets (one line naming a wrong key or value)."""
    tables = settings.model_dump()
    found: dict[str, Any] = {}
    for table, command in commands(group).items():
        params = {key_of(p): p for p in command.params if p.name not in ("help",)}
        given = {key: tables[key] for key in COMMON_KEYS if tables.get(key) is not None and key in params}
        table_values = tables.get(table)  # `index` is the common key, not `rag index`'s table
        for key, value in (table_values if isinstance(table_values, dict) else {}).items():
            if key not in params:
                raise RagError(f"[{table}] {key} is not an option of `rag {table.replace('_', ' ')}` "
                               f"(its keys: {', '.join(sorted(params))})")
            given[key] = value
        values = {}
        for key, value in given.items():
            param = params[key]
            try:
                param.process_value(typer.Context(command), value)
            except typer.BadParameter as exc:
                raise RagError(f"[{table}] {key} = {value!r}: {exc.message}") from None
            values[param.name] = value
        if values:
            found[table] = values
    return nest(found, group)


def nest(flat: dict[str, Any], group) -> dict[str, Any]:
    """`bench_http` back under `bench` -> `http`, as click looks defaults up."""
    nested: dict[str, Any] = {}
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            inner = {key[len(name) + 1:]: value for key, value in flat.items() if key.startswith(name + "_")}
            if inner:
                nested[name] = nest(inner, command)
        elif name in flat:
            nested[name] = flat[name]
    return nested


def shown(key: str, value: Any) -> Any:
    """A value as `rag config` prints it: secrets masked, URLs without their passwords."""
    if value is None:
        return value
    if any(word in key for word in SECRET_WORDS):
        return "***"
    if isinstance(value, str) and "://" in value:
        return redact(value)
    return value
