"""Errors the user can act on.

Every failure a user can cause or fix (no index, wrong model file, bad input) is raised as a
RagError with one readable sentence; the CLI prints it on stderr and exits non-zero instead of
showing a traceback.
"""


class RagError(Exception):
    """A failure explained in one sentence, meant for the user."""


class IndexMismatchError(RagError):
    """The index on disk was built by something other than what is asked to read it."""


class IndexMissingError(RagError):
    """There is no index where one was asked for (nothing has been built there yet)."""
