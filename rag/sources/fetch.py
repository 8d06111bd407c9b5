"""Fetching pages, feeds and sitemaps politely: the only module of this layer that uses the network.

`Fetcher.get` obeys robots.txt (`can_fetch`, `Crawl-delay`), keeps `delay` seconds between two
requests to one host, sends a User-Agent naming rag and its version (and a contact, if given),
asks conditionally (ETag, Last-Modified: a 304 is `Fetched.not_modified`, with no body), honours
`Retry-After` on 429 and 503 (else backs off), and stops at every limit with a reason:
http(s) only, at most `MAX_REDIRECTS` redirects and no loop, timeouts, and `max_bytes` counted
after decompression, so a gzip bomb stops at the cap. Addresses found in feeds, sitemaps or
redirects (`trusted=False`) that resolve to loopback, private, link-local or otherwise reserved
addresses are refused unless `allow_private`: a feed must not make rag read an internal service.
"""

from __future__ import annotations

import ipaddress
import socket
import time
import urllib.robotparser
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from rag import __version__
from rag.errors import RagError

MAX_REDIRECTS = 5
MAX_BYTES = 10_000_000  # a news page is well under a megabyte
DEFAULT_DELAY = 5.0  # seconds between two requests to one host
TIMEOUT = 30.0
RETRIES = 2  # more tries after a 429, a 503 or a broken connection
MAX_RETRY_AFTER = 120.0  # a longer Retry-After is a reason to come back later, not to wait


class FetchError(RagError):
    """This address could not be fetched; the message says why (one line). `gone`: HTTP 410."""

    def __init__(self, message: str, gone: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.gone = gone
        self.retry_after = retry_after


@dataclass
class Fetched:
    url: str  # asked for
    final_url: str  # after redirects
    status: int
    body: bytes = b""
    content_type: str = ""
    charset: str | None = None
    etag: str | None = None
    last_modified: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def user_agent(contact: str | None = None) -> str:
    """The User-Agent every request sends: rag, its version, and whom to reach.

    >>> user_agent("ops@example.de")
    'rag/0.1.0 (+offline news question answering; ops@example.de)'
    """
    return f"rag/{__version__} (+offline news question answering{'; ' + contact if contact else ''})"


def private_address(host: str) -> str | None:
    """The first loopback, private, link-local or reserved address `host` resolves to, else None.

    >>> private_address("127.0.0.1"), private_address("10.1.2.3"), private_address("93.184.216.34")
    ('127.0.0.1', '10.1.2.3', None)
    """
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
    except OSError:
        return None  # it does not resolve: the request fails on its own
    for address in sorted(addresses):
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global or ip.is_multicast:
            return address
    return None


class Fetcher:
    def __init__(self, delay: float = DEFAULT_DELAY, contact: str | None = None, allow_private: bool = False,
                 max_bytes: int = MAX_BYTES, timeout: float = TIMEOUT, sleep=time.sleep):
        import httpx

        self.delay, self.allow_private, self.max_bytes = delay, allow_private, max_bytes
        self.agent = user_agent(contact)
        self.client = httpx.Client(headers={"User-Agent": self.agent}, timeout=timeout, follow_redirects=False)
        self._robots: dict[str, urllib.robotparser.RobotFileParser | None] = {}
        self._last: dict[str, float] = {}  # host -> when the last request to it was sent
        self.sleep = sleep
        self.requests = 0

    def close(self) -> None:
        self.client.close()

    def get(self, url: str, trusted: bool = True, etag: str | None = None,
            last_modified: str | None = None) -> Fetched:
        """The resource at `url` (see the module's docstring); FetchError says why not."""
        seen, current, trust = [url], url, trusted
        for _ in range(MAX_REDIRECTS + 1):
            self._check_address(current, trust)
            response = self._send(current, etag if current == url else None, last_modified if current == url else None)
            if response.status_code in (301, 302, 303, 307, 308):
                location = response.headers.get("location")
                if not location:
                    raise FetchError(f"{current}: a redirect without a Location")
                following = urljoin(current, location)
                if following in seen:
                    raise FetchError(f"{url}: a redirect loop ({' -> '.join(seen + [following])})")
                trust = trust and urlsplit(following).hostname == urlsplit(current).hostname
                seen.append(following)
                current = following
                continue
            return self._finish(url, current, response)
        raise FetchError(f"{url}: more than {MAX_REDIRECTS} redirects")

    def _check_address(self, url: str, trusted: bool) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FetchError(f"{url}: not an http(s) address")
        if not trusted and not self.allow_private:
            address = private_address(parts.hostname)
            if address:
                raise FetchError(f"{url}: {parts.hostname} is a private or local address ({address}); "
                                 "--allow-private-hosts reads it")
        if not self.allowed_by_robots(url):
            raise FetchError(f"{url}: disallowed by {parts.scheme}://{parts.netloc}/robots.txt")

    def _send(self, url: str, etag: str | None, last_modified: str | None):
        """One request, after the host's delay; 429/503 retried after their Retry-After."""
        import httpx

        headers = {"Accept-Encoding": "gzip, deflate"}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        for attempt in range(RETRIES + 1):
            self._wait_for_host(url)
            try:
                request = self.client.build_request("GET", url, headers=headers)
                try:
                    response = self.client.send(request, stream=True)
                finally:
                    self._answered(url)
            except httpx.TimeoutException:
                error = FetchError(f"{url}: no answer within {self.client.timeout.read:g} s")
            except httpx.TransportError as exc:
                error = FetchError(f"{url}: {type(exc).__name__}: {exc}" if str(exc) else f"{url}: {type(exc).__name__}")
            else:
                if response.status_code not in (429, 503):
                    return response
                wait = retry_after(response.headers.get("retry-after"))
                response.close()
                error = FetchError(f"{url}: HTTP {response.status_code}", retry_after=wait)
                if wait is not None and wait > MAX_RETRY_AFTER:
                    raise FetchError(f"{url}: HTTP {response.status_code}, come back in {wait:.0f} s", retry_after=wait)
            if attempt < RETRIES:
                self.sleep(error.retry_after if error.retry_after is not None else 2.0 * 2 ** attempt)
        raise error

    def _finish(self, url: str, final: str, response) -> Fetched:
        try:
            return self._read(url, final, response)
        finally:
            response.close()

    def _read(self, url: str, final: str, response) -> Fetched:
        """The body of a response that is not a redirect, within the size cap; FetchError for an error status."""
        status = response.status_code
        if status == 410:
            raise FetchError(f"{url}: HTTP 410, gone", gone=True)
        if status >= 400:
            raise FetchError(f"{url}: HTTP {status}")
        declared = int(response.headers.get("content-length") or 0)
        if declared > self.max_bytes and "content-encoding" not in response.headers:
            raise FetchError(f"{url}: {declared / 1e6:.1f} MB, above the limit of {self.max_bytes / 1e6:g} MB")
        body = bytearray()
        for piece in response.iter_bytes():  # decompressed: the cap counts what it inflates to
            body += piece
            if len(body) > self.max_bytes:
                raise FetchError(f"{url}: more than {self.max_bytes / 1e6:g} MB"
                                 + (" once decompressed" if "content-encoding" in response.headers else ""))
        kind = response.headers.get("content-type", "")
        return Fetched(url, final, status, bytes(body), kind.split(";")[0].strip().lower(), response.charset_encoding,
                       response.headers.get("etag"), response.headers.get("last-modified"))

    def _wait_for_host(self, url: str) -> None:
        """Sleep until `delay` (or the host's Crawl-delay) has passed since its last answer."""
        host = urlsplit(url).netloc.lower()
        robots = self._robots.get(host)
        delay = max(self.delay, float(robots.crawl_delay(self.agent) or 0) if robots else 0)
        last = self._last.get(host)
        if last is not None:
            left = last + delay - time.monotonic()
            if left > 0:
                self.sleep(left)
        self.requests += 1

    def _answered(self, url: str) -> None:
        """The delay counts from the answer, not the question: a slow host gets more time between requests."""
        self._last[urlsplit(url).netloc.lower()] = time.monotonic()

    def allowed_by_robots(self, url: str) -> bool:
        """What the host's robots.txt says of `url` for our User-Agent, read once per host. A
        robots.txt that is missing (4xx) allows everything; one the server fails on (5xx, or no
        answer) allows nothing, for now (RFC 9309)."""
        parts = urlsplit(url)
        host = parts.netloc.lower()
        if host not in self._robots:
            self._robots[host] = self._read_robots(f"{parts.scheme}://{parts.netloc}/robots.txt")
        robots = self._robots[host]
        return robots.can_fetch(self.agent, url) if robots is not None else False

    def _read_robots(self, address: str) -> urllib.robotparser.RobotFileParser | None:
        import httpx

        robots = urllib.robotparser.RobotFileParser(address)
        self._wait_for_host(address)
        try:
            response = self.client.get(address, follow_redirects=True)
        except httpx.HTTPError:
            return None
        finally:
            self._answered(address)
        if response.status_code >= 500:
            return None
        robots.parse(response.text.splitlines() if response.status_code < 400 else [])
        return robots


def retry_after(value: str | None) -> float | None:
    """Seconds a Retry-After header asks for: a number, or an HTTP date.

    >>> retry_after("7"), retry_after(None), retry_after("soon")
    (7.0, None, None)
    """
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None
