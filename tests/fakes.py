"""Deterministic stand-ins for the two models, for fast unit tests."""

from __future__ import annotations

import hashlib
import re
from typing import Callable

import numpy as np

from rag.models.embedding import Embedder
from rag.models.generation import Generation, Generator, record_usage


class FakeEmbedder(Embedder):
    """Bag of hashed lower-case words: texts sharing words get similar vectors."""

    def __init__(self, model_id: str = "fake-embedder@1", dimension: int = 64, max_tokens: int = 64):
        self.model_id = model_id
        self.dimension = dimension
        self.max_tokens = max_tokens
        self.embedded_texts = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        self.embedded_texts += len(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimension] += 1.0
            out[row] /= max(np.linalg.norm(out[row]), 1e-9)
        return out


class FakeGenerator(Generator):
    """Replies with `reply(messages)`; counts whitespace words as tokens.

    Asked for alternatives, it gives up to that many of `alternatives` ((text, probability) pairs,
    the reply itself having `probability`).
    """

    def __init__(self, reply: str | Callable[[list[dict]], str] = "", context_length: int = 4096,
                 finish_reason: str = "stop", support: float | Callable[[list[dict]], float] = 1.0,
                 probability: float | None = None, alternatives: tuple[tuple[str, float], ...] = ()):
        self.reply = reply
        self.support = support  # what the support check returns, or a function of its messages
        self.probability = probability
        self.alternatives = alternatives
        self.context_length = context_length
        self.finish_reason = finish_reason
        self.model_id = "fake-generator@1"
        self.runtime = "fake runtime 1"
        self.calls: list[list[dict]] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def yes_probability(self, messages) -> float:
        self.calls.append(messages)
        record_usage(sum(self.count_tokens(m["content"]) for m in messages), 0, 0)
        return self.support(messages) if callable(self.support) else self.support

    def generate(self, messages, max_tokens, on_token=None, alternatives=0) -> Generation:
        self.calls.append(messages)
        text = self.reply(messages) if callable(self.reply) else self.reply
        for piece in re.findall(r"\S+\s*", text):
            if on_token:
                on_token(piece)
        prompt = sum(self.count_tokens(m["content"]) for m in messages)
        others = sorted(self.alternatives, key=lambda pair: -pair[1])[:alternatives]
        record_usage(prompt, 0, self.count_tokens(text) + sum(self.count_tokens(t) for t, _ in others))
        return Generation(text, self.finish_reason, prompt, self.count_tokens(text), 0.0, 0.0, self.probability,
                          tuple(Generation(t, "stop", prompt, self.count_tokens(t), 0.0, 0.0, p) for t, p in others))


class SlowGenerator(FakeGenerator):
    """A FakeGenerator that writes one word every `delay` seconds and, asked to stop, ends the call
    at once, as the real one does between two steps of its graph; it records what it did.

    `busy` is set while it writes, `stopped` once a stop request ended a reply early. `hold(n)`
    lets it write n more words and then wait (still ending at once on a stop request) until
    `allow` or `let_go`: a test puts the model in a state by construction, not by timing.
    """

    def __init__(self, reply="Mehr als 20 Abkommen [1].", delay: float = 0.05, **kwargs):
        super().__init__(reply, **kwargs)
        import threading

        self.delay = delay
        self._words_allowed: int | None = None  # None: as many as it likes
        self._allowed = threading.Condition()
        self.busy = threading.Event()
        self.stopped = threading.Event()
        self.words_written = 0
        self.replies_started = 0
        self.writing = 0  # replies being written now, and the most at once
        self.most_at_once = 0
        self._count = threading.Lock()

    def hold(self, words: int = 0) -> None:
        """From now on write at most `words` more words, then wait."""
        with self._allowed:
            self._words_allowed = words

    def allow(self, words: int) -> None:
        with self._allowed:
            self._words_allowed = (self._words_allowed or 0) + words
            self._allowed.notify_all()

    def let_go(self) -> None:
        with self._allowed:
            self._words_allowed = None
            self._allowed.notify_all()

    def _next_word_allowed(self) -> bool:
        """Wait until a word may be written; False when a stop was requested first."""
        with self._allowed:
            while self._words_allowed == 0:
                if self.stop_requested:
                    return False
                self._allowed.wait(0.01)
            if self._words_allowed is not None:
                self._words_allowed -= 1
        return not self.stop_requested

    def generate(self, messages, max_tokens, on_token=None, alternatives=0) -> Generation:
        import time

        self.calls.append(messages)
        self.replies_started += 1
        text = self.reply(messages) if callable(self.reply) else self.reply
        written = []
        self.busy.set()
        with self._count:
            self.writing += 1
            self.most_at_once = max(self.most_at_once, self.writing)
        try:
            for piece in re.findall(r"\S+\s*", text):
                if not self._next_word_allowed():  # the real one's abort callback ends the call with an error
                    self.stopped.set()
                    raise KeyboardInterrupt
                time.sleep(self.delay)
                self.words_written += 1
                written.append(piece)
                if on_token:
                    on_token(piece)
        finally:
            with self._count:
                self.writing -= 1
            self.busy.clear()
        text = "".join(written)
        prompt = sum(self.count_tokens(m["content"]) for m in messages)
        record_usage(prompt, 0, self.count_tokens(text))
        return Generation(text, self.finish_reason, prompt, self.count_tokens(text), 0.0, 0.0, self.probability)


def assert_postings_consistent(database) -> None:
    """Every term's document frequency is the number of live chunks its postings list, and every
    live chunk is listed under each of its terms (a check of index.py's postings and terms tables)."""
    from collections import Counter

    from rag.text.lexical import chunk_terms, decode_postings

    live = dict(database.execute("SELECT id, text FROM chunks"))
    listed: dict[str, set] = {}
    for term, ids, tfs in database.execute("SELECT term, ids, tfs FROM postings"):
        listed.setdefault(term, set()).update(i for i in decode_postings(ids, tfs)[0].tolist() if i in live)
    expected = Counter(term for text in live.values() for term in chunk_terms(text))
    frequencies = {term: df for term, df in database.execute("SELECT term, df FROM terms") if df}
    assert frequencies == dict(expected)
    assert {term: len(ids) for term, ids in listed.items() if ids} == dict(expected)
