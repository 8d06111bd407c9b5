"""Errors the user can act on.

Every failure a user can cause or fix (no index, wrong model file, bad input) is raised as a
RagError with one readable sentence; the CLI prints it on stderr and exits non-zero instead of
showing a traceback. No message shows a password: URLs pass through `redact` first.

>>> redact("postgresql://rag:s3cret@db:5432/news"), redact("http://a:8080")
('postgresql://rag:***@db:5432/news', 'http://a:8080')
"""

from urllib.parse import urlsplit, urlunsplit


def redact(url: str) -> str:
    """The URL without its password: what every message, log line and metric label shows."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class RagError(Exception):
    """A failure explained in one sentence, meant for the user."""


class IndexMismatchError(RagError):
    """The index on disk was built by something other than what is asked to read it."""


class IndexMissingError(RagError):
    """There is no index where one was asked for (nothing has been built there yet)."""
