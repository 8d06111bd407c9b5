"""One writer per index: an exclusive lock on the index folder's LOCK file.

`rag index` and `rag remove` hold it while they change the index; a second writer waits for it
(saying so) or, with `wait=False`, fails at once. Readers never take it: SQLite's WAL mode gives
them a consistent state without blocking. The lock belongs to the open file, so a writer killed
with -9 releases it with its process.

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> with writer_lock(folder):
...     (folder / "LOCK").read_text().split()[0] == "pid"
True
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from rag.errors import RagError


class IndexBusyError(RagError):
    """Another writer holds the index."""


@contextmanager
def writer_lock(index_dir: Path, wait: bool = True, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold the index's writer lock for the body; `on_wait(message)` is called once if it must wait."""
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(index_dir / "LOCK", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            message = f"another rag is writing the index at {index_dir} ({holder})"
            if not wait:
                raise IndexBusyError(f"{message}; try again when it is done, or leave out --no-wait to wait") from None
            if on_wait:
                on_wait(f"{message}; waiting for it to finish…")
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
