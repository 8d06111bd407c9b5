"""Generation: a local GGUF model answers from a prompt, streaming its tokens.

`Generator` is the interface (a fake one serves the unit tests); `LlamaGenerator` runs a GGUF
file through llama-cpp-python, loaded on first use, greedy and seeded so answers repeat.
"""

from __future__ import annotations

import logging
import re
import time
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .errors import RagError


@dataclass(frozen=True)
class Generation:
    text: str
    finish_reason: str  # "stop" or "length"
    prompt_tokens: int
    completion_tokens: int
    prompt_seconds: float  # until the first token: prompt processing
    generation_seconds: float


class Generator(ABC):
    model_id: str
    context_length: int
    runtime: str = ""  # what runs the model, when answers depend on it
    _stop_requested = False

    def request_stop(self) -> None:
        """Ask the work inside `stoppable()` to end. Safe in a signal handler: it only sets a flag."""
        self._stop_requested = True

    @property
    def stop_requested(self) -> bool:
        """True inside `stoppable()` once a stop was requested there; False outside."""
        return self._stop_requested

    @contextmanager
    def stoppable(self) -> Iterator[None]:
        """A block that `request_stop()` ends with KeyboardInterrupt, at the latest when the block is done."""
        self._stop_requested = False
        try:
            yield
            if self._stop_requested:
                raise KeyboardInterrupt
        finally:
            self._stop_requested = False

    def load(self) -> None:
        """Load the model now rather than on first use."""

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens of `text` in this model's vocabulary."""

    @abstractmethod
    def generate(self, messages: list[dict], max_tokens: int,
                 on_token: Callable[[str], None] | None = None) -> Generation:
        """Answer a chat (system/user messages) greedily, calling on_token per piece of text."""

    @abstractmethod
    def yes_probability(self, messages: list[dict]) -> float:
        """How much the model leans to replying yes rather than no, in [0, 1] (0.5: undecided)."""


class LlamaGenerator(Generator):
    def __init__(self, model_path: Path, sha256: str, n_ctx: int = 4096, n_threads: int = 2, seed: int = 0):
        self.model_path = Path(model_path)
        self.sha256 = sha256
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.seed = seed
        self._llm = None
        self.load_seconds = 0.0
        self._prefix_states: dict[str, object] = {}  # system prompt -> llama state after it

    @property
    def model_id(self) -> str:
        return f"{self.model_path.name}@{self.sha256[:12]}"

    @property
    def context_length(self) -> int:
        return self.n_ctx

    @property
    def runtime(self) -> str:
        """The llama.cpp build: its version and the CPU features it was compiled for.

        Answers repeat exactly only on the same build: an AVX-512 build rounds differently from
        an AVX2 one, enough to change a few answers of the seed evaluation set.
        """
        import llama_cpp

        info = llama_cpp.llama_print_system_info().decode("utf-8", "replace")
        features = [name for name, on in re.findall(r"(\w+) = (\d+)", info) if on != "0"]
        return f"llama-cpp-python {llama_cpp.__version__} ({' '.join(features)})"

    def training_context_length(self) -> int | None:
        meta = self._load().metadata
        for key, value in meta.items():
            if key.endswith(".context_length"):
                return int(value)
        return None

    def load(self) -> None:
        self._load()

    def _load(self):
        if self._llm is None:
            from llama_cpp import Llama

            started = time.perf_counter()
            try:
                self._llm = Llama(model_path=str(self.model_path), n_ctx=self.n_ctx, n_threads=self.n_threads,
                                  n_threads_batch=self.n_threads, n_batch=512, seed=self.seed, verbose=False)
            except (ValueError, RuntimeError) as exc:
                raise RagError(f"could not load the model {self.model_path}: it is not a valid or complete "
                               f"GGUF model ({exc})") from None
            self.load_seconds = time.perf_counter() - started
        return self._llm

    @contextmanager
    def stoppable(self) -> Iterator[None]:
        """As `Generator.stoppable`, and a model call under way ends within milliseconds.

        Python acts on Ctrl-C only between two calls into llama.cpp, and one prompt batch (up
        to 512 tokens) takes 5 s here, over 10 s on a busy machine. llama.cpp asks an abort
        callback between the steps of its graph; answering it from the flag stops the batch at
        once (llama-cpp-python then raises RuntimeError). The callback is set only inside this
        block: the default Ctrl-C handler, raising in a callback, would be swallowed there.
        """
        import llama_cpp
        from llama_cpp._logger import logger as llama_logger

        context = self._load()._ctx.ctx
        level = llama_logger.level

        def should_abort(_data) -> bool:
            if self._stop_requested:  # llama.cpp reports the abort it was asked for as an error
                llama_logger.setLevel(logging.CRITICAL)
            return self._stop_requested

        abort = llama_cpp.ggml_abort_callback(should_abort)
        llama_cpp.llama_set_abort_callback(context, abort, None)
        try:
            with super().stoppable():
                try:
                    yield
                except RuntimeError:
                    if self._stop_requested:
                        raise KeyboardInterrupt from None
                    raise
        finally:
            llama_cpp.llama_set_abort_callback(context, llama_cpp.ggml_abort_callback(), None)
            llama_logger.setLevel(level)

    def _restore_system_prefix(self, messages: list[dict]) -> None:
        """Start from the saved state after the system message, evaluating it only the first time.

        llama-cpp reuses whatever prefix the previous prompt shared with this one, which makes an
        answer depend on what was asked before it (floating point differs with the batch split).
        Restoring one fixed prefix state keeps answers repeatable and still skips re-reading the
        system prompt (about 1 s here).
        """
        llm = self._llm
        if not messages or messages[0]["role"] != "system":
            llm.reset()
            return
        key = messages[0]["content"]
        if key not in self._prefix_states:
            llm.reset()
            # ChatML, as Qwen's template writes it; with another template the prefix simply matches
            # less of the prompt and llama-cpp evaluates the rest: slower, never wrong.
            prefix = llm.tokenize(f"<|im_start|>system\n{key}<|im_end|>\n".encode("utf-8"), add_bos=False,
                                  special=True)
            llm.eval(prefix)
            self._prefix_states[key] = llm.save_state()
        llm.load_state(self._prefix_states[key])

    def yes_probability(self, messages: list[dict]) -> float:
        """P(yes) / (P(yes) + P(no)) for the first token of the reply, from one prompt evaluation.

        Nothing is generated; only the prompt is read (about 1.5 s for a sentence and a question).
        """
        llm = self._load()
        self._restore_system_prefix(messages)
        rest = messages[1:] if messages and messages[0]["role"] == "system" else messages
        # ChatML as in _restore_system_prefix: the system part is already evaluated.
        text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in rest) + "<|im_start|>assistant\n"
        llm.eval(llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))
        logits = np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(llm.n_vocab(),)).astype(np.float64)
        top = logits.max()

        def mass(words: tuple[str, ...]) -> float:
            ids = {llm.tokenize(w.encode("utf-8"), add_bos=False, special=False)[0] for w in words}
            return float(sum(np.exp(logits[i] - top) for i in ids))

        yes, no = mass(("yes", "Yes", "YES")), mass(("no", "No", "NO"))
        return yes / (yes + no) if yes + no > 0 else 0.0

    def count_tokens(self, text: str) -> int:
        return len(self._load().tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def generate(self, messages: list[dict], max_tokens: int,
                 on_token: Callable[[str], None] | None = None) -> Generation:
        llm = self._load()
        started = time.perf_counter()  # prompt processing includes reading the system prompt the first time
        self._restore_system_prefix(messages)
        first = None
        pieces: list[str] = []
        finish = "stop"
        stream = llm.create_chat_completion(messages=messages, temperature=0.0, top_k=1, seed=self.seed,
                                            max_tokens=max_tokens, stream=True)
        for event in stream:
            choice = event["choices"][0]
            piece = choice.get("delta", {}).get("content") or ""
            if piece:
                if first is None:
                    first = time.perf_counter()
                pieces.append(piece)
                if on_token:
                    on_token(piece)
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
        ended = time.perf_counter()
        first = first or ended
        text = "".join(pieces)
        prompt_tokens = sum(self.count_tokens(m["content"]) + 4 for m in messages)
        return Generation(text, finish, prompt_tokens, self.count_tokens(text), first - started, ended - first)
