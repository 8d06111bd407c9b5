"""Generation: the answer model's interface, what one reply is, and the count of model work.

`Generator` is the interface every answer model implements: in process (`models.llama`), on a
model server (`models.remote`), or a fake one for the unit tests. `metered()` and `model_call()`
count each question's model work (`ModelUsage`), whichever generator does it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Callable, Iterator


@dataclass(frozen=True)
class Generation:
    text: str
    finish_reason: str  # "stop" or "length"
    prompt_tokens: int
    completion_tokens: int
    prompt_seconds: float  # until the first token: prompt processing
    generation_seconds: float
    probability: float | None = None  # the model's probability of this reply, its end included (None: unknown)
    # Replies that begin with another likely first token and go on greedily, most probable first.
    alternatives: tuple[Generation, ...] = ()


@dataclass
class ModelUsage:
    """The model work of one question, summed over its calls: prompt tokens the model evaluated,
    prompt tokens it reused from a saved state instead, tokens it generated, calls by purpose.

    >>> with metered() as usage:
    ...     with model_call("support"):
    ...         record_usage(prompt=40, cached=25, completion=0)
    >>> usage.to_json()
    {'prompt': 40, 'cached': 25, 'completion': 0, 'calls': {'support': 1}}
    """

    prompt: int = 0
    cached: int = 0
    completion: int = 0
    calls: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"prompt": self.prompt, "cached": self.cached, "completion": self.completion,
                "calls": dict(self.calls)}


_USAGE: ContextVar[ModelUsage | None] = ContextVar("rag_model_usage", default=None)
_PURPOSE: ContextVar[str] = ContextVar("rag_model_call", default="other")


@contextmanager
def metered() -> Iterator[ModelUsage]:
    """Count the model work done inside (in this thread or context) into a ModelUsage: a new
    one, or the one of a `metered()` block around this one."""
    usage = _USAGE.get()
    if usage is not None:
        yield usage
        return
    usage = ModelUsage()
    token = _USAGE.set(usage)
    try:
        yield usage
    finally:
        _USAGE.reset(token)


@contextmanager
def model_call(purpose: str) -> Iterator[None]:
    """Name the model calls made inside ("answer", "support", ...) for `ModelUsage.calls`."""
    token = _PURPOSE.set(purpose)
    try:
        yield
    finally:
        _PURPOSE.reset(token)


def record_usage(prompt: int, cached: int, completion: int) -> None:
    """Called by a generator for each model call: counted into the `metered()` block around it, if any."""
    usage = _USAGE.get()
    if usage is not None:
        usage.prompt += prompt
        usage.cached += cached
        usage.completion += completion
        purpose = _PURPOSE.get()
        usage.calls[purpose] = usage.calls.get(purpose, 0) + 1


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

    def forget_prompts(self) -> None:
        """Drop what was kept of earlier prompts to read later ones faster (nothing, unless kept)."""

    def fork(self) -> Generator:
        """A generator for one of several requests answered at once (its own stop flag). An
        in-process model answers one at a time, so it is itself; a model server's forks share it."""
        return self

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens of `text` in this model's vocabulary."""

    @abstractmethod
    def generate(self, messages: list[dict], max_tokens: int, on_token: Callable[[str], None] | None = None,
                 alternatives: int = 0) -> Generation:
        """Answer a chat (system/user messages) greedily, calling on_token per piece of text.

        With `alternatives`, up to that many replies beginning with other likely first tokens come
        along in `Generation.alternatives` (not streamed).
        """

    @abstractmethod
    def yes_probability(self, messages: list[dict]) -> float:
        """How much the model leans to replying yes rather than no, in [0, 1] (0.5: undecided)."""
