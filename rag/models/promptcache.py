"""Saved model states after prompt prefixes, so that a prompt is read only past what was read before.

A prompt is evaluated in segments (its messages, and within a message its paragraphs: each
numbered source is one). After each segment but the last, the model's state (its KV cache and
the last token's logits) is saved under the tokens read so far. A later prompt that begins with
the same segments, in the same call or the next question, starts from the longest saved one.

Answers stay independent of what was asked before: a prompt's segments are always evaluated as
the same batches, whether a segment comes from a saved state or is read now, so the floating
point is the same bit for bit. (Reusing an arbitrary shared prefix, as llama-cpp-python does on
its own, splits the batches differently and changes a few answers.)

>>> states = PromptStates(max_bytes=12)
>>> states.put([1, 2], b"abcd"); states.put([1, 2, 3], b"efghij")
>>> states.longest([[1, 2], [3], [4]])  # two segments read before, the third to read
(2, b'efghij')
>>> states.put([7], b"klmno")  # over 12 bytes: the least recently used state goes
>>> states.longest([[1, 2], [5]]), len(states)
(None, 2)
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from pathlib import Path

import numpy as np

from rag.fileio import atomic_write


def _key(tokens) -> bytes:
    return np.asarray(tokens, dtype=np.int32).tobytes()


class PromptStates:
    """Model states by the prompt tokens read before them; least recently used dropped beyond
    `max_bytes`. Pinned states (a system prompt's: few, small, read by every call) stay, up to
    `MAX_PINNED` of them (a client may send system prompts of its own)."""

    MAX_PINNED = 16

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._states: OrderedDict[bytes, bytes] = OrderedDict()
        self._pinned: dict[bytes, bytes] = {}
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._states) + len(self._pinned)

    def __contains__(self, tokens) -> bool:
        key = _key(tokens)
        return key in self._pinned or key in self._states

    def forget(self) -> None:
        """Drop every state but the pinned ones."""
        self._states.clear()
        self._bytes = 0

    def put(self, tokens, state: bytes, pin: bool = False) -> None:
        key = _key(tokens)
        if pin and len(self._pinned) < self.MAX_PINNED:
            self._pinned[key] = state
            return
        if key in self._states or key in self._pinned or len(state) > self.max_bytes:
            return
        self._states[key] = state
        self._bytes += len(state)
        while self._bytes > self.max_bytes:
            _, dropped = self._states.popitem(last=False)
            self._bytes -= len(dropped)

    def longest(self, segments: list[list[int]]) -> tuple[int, bytes] | None:
        """(how many leading segments, the state after them) for the longest saved prefix of
        `segments` that leaves the last segment to read; None when there is none."""
        ends = np.cumsum([len(s) for s in segments])
        tokens = [t for segment in segments for t in segment]
        for count in range(len(segments) - 1, 0, -1):
            key = _key(tokens[:ends[count - 1]])
            if key in self._pinned:
                return count, self._pinned[key]
            if key in self._states:
                self._states.move_to_end(key)
                return count, self._states[key]
        return None


class StateFiles:
    """System prompts' states kept on disk, so that a new process (`rag ask`) starts where a warm
    one would: 1-1.5 s less on its first question here (the answer and support system prompts: 63 tokens).

    One file a state, named by a hash of what it depends on: the model file, the llama.cpp build
    (another build's arithmetic differs), the context size and the tokens read. The file opens
    with a JSON line saying so and giving the state's sha256 (checked on reading: a file that
    does not match is not used); the state's bytes follow. Written atomically; the `keep` newest
    files are kept.

    >>> import tempfile
    >>> files = StateFiles(Path(tempfile.mkdtemp()), {"model": "m@1", "runtime": "b1", "n_ctx": 4096})
    >>> files.save([5, 6], b"state"); files.load([5, 6]), files.load([5])
    (b'state', None)
    >>> StateFiles(files.folder, {"model": "m@1", "runtime": "b2", "n_ctx": 4096}).load([5, 6]) is None
    True
    """

    FORMAT = "rag-prompt-state"
    VERSION = 1

    def __init__(self, folder: Path, identity: dict, keep: int = PromptStates.MAX_PINNED):
        self.folder = Path(folder)
        self.identity = identity
        self.keep = keep

    def _path(self, tokens) -> Path:
        digest = hashlib.sha256(json.dumps(self.identity, sort_keys=True).encode() + _key(tokens)).hexdigest()
        return self.folder / f"{digest[:32]}.state"

    def _header(self, tokens) -> dict:
        return {"format": self.FORMAT, "version": self.VERSION, **self.identity, "tokens": [int(t) for t in tokens]}

    def load(self, tokens) -> bytes | None:
        """The state saved after `tokens`, or None (none saved, or saved by another model, build,
        context size or format, or damaged: the state's sha256 is in the first line)."""
        try:
            with open(self._path(tokens), "rb") as f:
                header = json.loads(f.readline())
                state = f.read()
        except (OSError, ValueError):
            return None
        expected = self._header(tokens)
        if not isinstance(header, dict) or {key: header.get(key) for key in expected} != expected \
                or header.get("sha256") != hashlib.sha256(state).hexdigest():
            return None
        return state

    def save(self, tokens, state: bytes) -> None:
        """Keep `state` on disk; a folder that cannot be written is not an error (states only save time)."""
        try:
            header = {**self._header(tokens), "sha256": hashlib.sha256(state).hexdigest()}
            atomic_write(self._path(tokens), lambda f: (f.write(json.dumps(header).encode() + b"\n"), f.write(state)))
            files = sorted(self.folder.glob("*.state"), key=lambda p: p.stat().st_mtime, reverse=True)
            for old in files[self.keep:]:
                old.unlink(missing_ok=True)
        except OSError:
            pass
