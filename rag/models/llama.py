"""The answer model in process: a local GGUF file run by llama-cpp-python.

`LlamaGenerator` loads the file on first use and decodes greedily and seeded, so answers repeat.
Asked for alternatives, it also follows other likely first tokens greedily, each reply with the
probability the model gives it: greedy decoding picks the likeliest first token, not the
likeliest reply. Prompts are read in segments whose states are kept (`models.promptcache`).
"""

from __future__ import annotations

import codecs
import logging
import re
import time
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from rag.errors import RagError
from rag.models.generation import Generation, Generator, record_usage
from rag.models.promptcache import PromptStates, StateFiles

# A first token this probable or more starts an alternative reply (XQuAD: 2.5 replies per question).
BRANCH_MIN_PROBABILITY = 0.05
# Saved states of prompt prefixes (28 KB a token for the 1.5B model: a 3-source prompt's four
# prefixes take about 30 MB): enough for the sources of the last ten or so questions.
PROMPT_CACHE_MB = 256
# A prompt is read in segments cut after its messages and its paragraphs ("\n\n" before text):
# the tokenizer never joins tokens across such a cut, so the segments' tokens are the prompt's.
_SEGMENT_END = re.compile(r"\n\n(?=\S)")
MEMORISED_LEANINGS = 4096  # yes/no prompts whose leaning is kept (a few hundred bytes each)



class LlamaGenerator(Generator):
    def __init__(self, model_path: Path, sha256: str, n_ctx: int = 4096, n_threads: int = 2, seed: int = 0,
                 prompt_cache_mb: int = PROMPT_CACHE_MB, state_dir: Path | None = None):
        """`state_dir`: where the system prompts' states are kept for the next process (None: not kept)."""
        self.model_path = Path(model_path)
        self.sha256 = sha256
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.seed = seed
        self._llm = None
        self.load_seconds = 0.0
        self._states = PromptStates(prompt_cache_mb * 2 ** 20)  # after prompt prefixes read before
        self._leanings: OrderedDict[str, tuple[int, float]] = OrderedDict()  # yes/no prompt -> (tokens, leaning)
        self._template = None  # the model's chat template, formatter once read (False: it has none)
        self.state_dir = state_dir
        self._state_files: StateFiles | None = None

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

            if "AMX_INT8" in re.findall(r"\w+", self.runtime):
                # ggml's AMX matrix code crashes the process on this model's first prompt batch
                # (seen on an AMX_INT8 CPU, 2026-12-07; llama.cpp#20824 is open): refuse in one line.
                raise RagError("this llama.cpp build uses AMX (AMX_INT8), whose code crashes on this model: "
                               "rebuild it without, as `make install` does (-mno-amx-int8), or use --llm-url")
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

    def _read_prompt(self, messages: list[dict]) -> tuple[int, int]:
        """Evaluate the chat's prompt, ready for the reply's first token; returns its length in
        tokens and how many of them came from a saved state rather than being evaluated.

        The prompt is read segment by segment (`_prompt_segments`), from the state saved after
        the longest run of leading segments read before, by this question or an earlier one;
        the state after each new segment but the last is saved. The batches are the same either
        way, so answers do not depend on what was asked before (`promptcache`).
        """
        llm = self._llm
        segments = self._prompt_segments(messages)
        tokens = [t for segment in segments for t in segment]
        # The system message's state is kept for good, in memory and on disk: every call of its kind reads it.
        system = messages[0]["role"] == "system" and len(segments) > 1
        files = self._system_state_files() if system else None
        if files and segments[0] not in self._states and (kept := files.load(segments[0])) is not None:
            self._states.put(segments[0], kept, pin=True)
        saved = self._states.longest(segments)
        start, cached = 0, 0
        if saved:
            start, state = saved
            cached = sum(len(s) for s in segments[:start])
            self._restore_state(state, tokens[:cached])
        else:
            llm.reset()
        for number in range(start, len(segments)):
            llm.eval(segments[number])
            if number < len(segments) - 1:
                state = self._save_state()
                self._states.put(tokens[:llm.n_tokens], state, pin=system and number == 0)
                if files and number == 0:
                    files.save(segments[0], state)
        return len(tokens), cached

    def _system_state_files(self) -> StateFiles | None:
        if self._state_files is None and self.state_dir is not None:
            identity = {"model": self.model_id, "runtime": self.runtime, "n_ctx": self.n_ctx}
            self._state_files = StateFiles(Path(self.state_dir) / self.sha256[:16], identity)
        return self._state_files

    def forget_prompts(self) -> None:
        """Drop the saved states of earlier prompts (not the system prompts') and the leanings
        remembered: the next question reads its prompts as a first question does."""
        self._states.forget()
        self._leanings.clear()

    def _save_state(self) -> bytes:
        import ctypes

        import llama_cpp

        context = self._llm._ctx.ctx
        size = llama_cpp.llama_state_get_size(context)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_get_data(context, buffer, size)
        return ctypes.string_at(buffer, written)

    def _restore_state(self, state: bytes, tokens: list[int]) -> None:
        """The model as it was after reading `tokens`, from their saved state (llama-cpp-python's
        own `save_state` copies its logits array too: 600 KB a token)."""
        import ctypes

        import llama_cpp

        llm = self._llm
        data = ctypes.cast(ctypes.c_char_p(state), ctypes.POINTER(ctypes.c_uint8))
        llama_cpp.llama_state_set_data(llm._ctx.ctx, data, len(state))
        llm.n_tokens = len(tokens)
        llm.input_ids[:len(tokens)] = tokens

    def _prompt_segments(self, messages: list[dict]) -> list[list[int]]:
        """The chat's prompt tokens (`_prompt_text`), cut after each message and each paragraph."""
        text = self._prompt_text(messages)
        cuts = {match.end() for match in _SEGMENT_END.finditer(text)}
        for count in range(1, len(messages)):
            head = self._prompt_text(messages[:count], reply=False)
            if text.startswith(head):
                cuts.add(len(head))
        bounds = [0] + sorted(c for c in cuts if 0 < c < len(text)) + [len(text)]
        tokenize = self._llm.tokenize
        return [tokenize(text[a:b].encode("utf-8"), add_bos=False, special=True) for a, b in zip(bounds, bounds[1:])]

    def _prompt_text(self, messages: list[dict], reply: bool = True) -> str:
        """The chat as the model's own template writes it (ChatML, Qwen's, for a model without one),
        up to where the assistant's reply begins (with `reply`)."""
        llm = self._llm
        if self._template is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            source = llm.metadata.get("tokenizer.chat_template")

            def text_of(token: int) -> str:
                return llm._model.token_get_text(token) if token != -1 else ""

            self._template = Jinja2ChatFormatter(source, eos_token=text_of(llm.token_eos()),
                                                 bos_token=text_of(llm.token_bos())) if source else False
        if self._template:
            self._template.add_generation_prompt = reply
            return self._template(messages=messages).prompt
        text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
        return text + ("<|im_start|>assistant\n" if reply else "")

    def yes_probability(self, messages: list[dict]) -> float:
        """P(yes) / (P(yes) + P(no)) for the first token of the reply, from one prompt evaluation.

        Nothing is generated; only the prompt is read (about 1.5 s for a sentence and a question).
        The same prompt again (the likelier reply's check often quotes the greedy one's sentence)
        is answered from memory: reading it again would give the same figure.
        """
        llm = self._load()
        prompt = self._prompt_text(messages)
        if prompt in self._leanings:
            self._leanings.move_to_end(prompt)
            length, leaning = self._leanings[prompt]
            record_usage(0, length, 0)
            return leaning
        length, cached = self._read_prompt(messages)
        record_usage(length - cached, cached, 0)
        probabilities = self._next_token_probabilities()

        def mass(words: tuple[str, ...]) -> float:
            ids = {llm.tokenize(w.encode("utf-8"), add_bos=False, special=False)[0] for w in words}
            return float(sum(probabilities[i] for i in ids))

        yes, no = mass(("yes", "Yes", "YES")), mass(("no", "No", "NO"))
        leaning = yes / (yes + no) if yes + no > 0 else 0.0
        self._leanings[prompt] = (length, leaning)
        if len(self._leanings) > MEMORISED_LEANINGS:
            self._leanings.popitem(last=False)
        return leaning

    def count_tokens(self, text: str) -> int:
        return len(self._load().tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def generate(self, messages: list[dict], max_tokens: int, on_token: Callable[[str], None] | None = None,
                 alternatives: int = 0) -> Generation:
        """Greedy decoding in our own loop (llama-cpp's own chat completion picks the same tokens),
        so that each token's probability is known and the prompt, read once, can be continued from
        other first tokens: those of probability at least `BRANCH_MIN_PROBABILITY`, the likeliest
        first, at most `alternatives` of them.
        """
        llm = self._load()
        started = time.perf_counter()  # prompt processing includes reading the system prompt the first time
        prompt_end, cached = self._read_prompt(messages)
        first = self._next_token_probabilities()
        prompt_seconds = time.perf_counter() - started
        ranked = np.argsort(-first, kind="stable")[:alternatives + 1]
        others = [int(t) for t in ranked[1:] if first[t] >= BRANCH_MIN_PROBABILITY and not self._is_end(int(t))]
        replies = []
        for token in [int(ranked[0])] + others:
            llm.n_tokens = prompt_end  # the next eval drops the previous branch from the KV cache
            replies.append(self._continue_greedily(token, float(first[token]), max_tokens,
                                                   on_token if not replies else None))
        generation_seconds = time.perf_counter() - started - prompt_seconds
        (text, finish, tokens, probability), *branches = replies
        record_usage(prompt_end - cached, cached, sum(reply[2] for reply in replies))
        alternatives_found = tuple(Generation(t, f, prompt_end, n, 0.0, 0.0, p)
                                   for t, f, n, p in sorted(branches, key=lambda b: -b[3]))
        return Generation(text, finish, prompt_end, tokens, prompt_seconds, generation_seconds, probability,
                          alternatives_found)

    def _next_token_probabilities(self) -> np.ndarray:
        llm = self._llm
        logits = np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(llm.n_vocab(),)).astype(np.float64)
        weights = np.exp(logits - logits.max())
        return weights / weights.sum()

    def _is_end(self, token: int) -> bool:
        import llama_cpp

        return bool(llama_cpp.llama_vocab_is_eog(self._llm._model.vocab, token))

    def _continue_greedily(self, token: int, probability: float, max_tokens: int,
                           on_token: Callable[[str], None] | None) -> tuple[str, str, int, float]:
        """The reply from `token` on, greedy: (text, finish reason, tokens, probability of the reply)."""
        llm = self._llm
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a character may span tokens
        pieces: list[str] = []
        tokens = 0
        while not self._is_end(token):
            tokens += 1
            piece = decoder.decode(llm.detokenize([token]))
            if piece:
                pieces.append(piece)
                if on_token:
                    on_token(piece)
            if tokens >= max_tokens or llm.n_tokens >= llm.n_ctx():
                return "".join(pieces), "length", tokens, probability  # a character cut off is dropped
            llm.eval([token])
            probabilities = self._next_token_probabilities()
            token = int(probabilities.argmax())
            probability *= float(probabilities[token])
        return "".join(pieces) + decoder.decode(b"", final=True), "stop", tokens, probability

