"""The library calls the CLI (and later the HTTP server) are thin layers over.

Factories resolve models from explicit paths, the environment or the defaults; nothing loads
until it is used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from rag.answer.answering import AnswerSettings, QuestionAnswerer
from rag.answer.timeframe import TimeFrame
from rag.errors import RagError
from rag.models.embedding import E5Embedder, Embedder, SentenceTransformerEmbedder
from rag.models.generation import Generator
from rag.models.llama import PROMPT_CACHE_MB, LlamaGenerator
from rag.models.packages import cached_sha256, rag_home, resolve_embedder_path, resolve_model_path
from rag.models.translation import QueryTranslator
from rag.search.retrieval import RetrievalSettings, Retriever
from rag.store.base import Store
from rag.store.locations import Location, open_store

DEFAULT_INDEX = Path("indexes/seeds")
DEFAULT_SEEDS = Path("seeds")


def make_embedder(choice: str | None = None) -> Embedder:
    """The embedder named by `choice` ("e5", "minilm" or a path), else $RAG_EMBEDDER, else e5."""
    path = resolve_embedder_path(choice)
    return E5Embedder(path) if path.is_file() else SentenceTransformerEmbedder(path)


def make_generator(path: str | None = None, progress: Callable[[int, int], None] | None = None,
                   server: ServerChoice | None = None) -> Generator:
    """The in-process GGUF model named by `path`, or the model server(s) of `server` when it has URLs."""
    server = server or ServerChoice()
    if server.urls:
        from rag.models.remote import ServerGenerator

        return ServerGenerator(server.urls, server.model, server.api_key, server.timeout)
    model_path = resolve_model_path(path, progress)
    return LlamaGenerator(model_path, cached_sha256(model_path), prompt_cache_mb=prompt_cache_mb(),
                          state_dir=rag_home() / "states")


def prompt_cache_mb() -> int:
    """$RAG_PROMPT_CACHE_MB, the memory kept for prompt states read before (0: only the system
    prompts'), else the default."""
    value = os.environ.get("RAG_PROMPT_CACHE_MB", "").strip()
    if not value:
        return PROMPT_CACHE_MB
    if not value.isdigit():
        raise RagError(f"RAG_PROMPT_CACHE_MB must be a whole number of megabytes (0: only the system prompts' "
                       f"states), not {value!r}")
    return int(value)


@dataclass(frozen=True)
class ServerChoice:
    """A model server to answer through instead of the in-process model (`--llm-url`): OpenAI-
    compatible URLs, separated by commas; None means $RAG_LLM_URL / $RAG_LLM_MODEL / $RAG_LLM_API_KEY."""

    urls: str | None = None
    model: str | None = None
    api_key: str | None = None
    timeout: float = 60.0

    def __post_init__(self):
        for name, variable in (("urls", "RAG_LLM_URL"), ("model", "RAG_LLM_MODEL"), ("api_key", "RAG_LLM_API_KEY")):
            if getattr(self, name) is None and os.environ.get(variable):
                object.__setattr__(self, name, os.environ[variable])


@dataclass(frozen=True)
class ModelChoice:
    """What the user asked for; None means the environment or the default."""

    model: str | None = None
    embedder: str | None = None
    server: ServerChoice = field(default_factory=ServerChoice)


def open_answerer(index_dir: Location, choice: ModelChoice = ModelChoice(),
                  retrieval: RetrievalSettings = RetrievalSettings(), answer: AnswerSettings = AnswerSettings(),
                  progress: Callable[[int, int], None] | None = None, frame: TimeFrame = TimeFrame()) -> QuestionAnswerer:
    """An answerer over the index at `index_dir`, refusing it if it was built with another embedder."""
    embedder = make_embedder(choice.embedder)
    index = open_store(index_dir, embedder.model_id)
    return answerer_for(index, embedder, make_generator(choice.model, progress, choice.server), retrieval, answer,
                        frame)


def answerer_for(index: Store, embedder: Embedder, generator: Generator,
                 retrieval: RetrievalSettings = RetrievalSettings(),
                 answer: AnswerSettings = AnswerSettings(), frame: TimeFrame = TimeFrame()) -> QuestionAnswerer:
    models = {"embedder": embedder.model_id, "embedder_sha256": getattr(embedder, "sha256", ""),
              "generator": generator.model_id, "generator_sha256": getattr(generator, "sha256", "")}
    return QuestionAnswerer(index, Retriever(index, embedder, retrieval), generator, answer, models,
                            translate=translator_for(generator).translate, frame=frame)


def make_translator(path: str | None = None, progress: Callable[[int, int], None] | None = None) -> QueryTranslator:
    """Translations by the answerer model, cached on disk beside the other caches."""
    return translator_for(make_generator(path, progress))


def translator_for(generator: Generator) -> QueryTranslator:
    return QueryTranslator(generator, rag_home() / "translations.json")
