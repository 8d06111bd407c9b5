"""Answering through a model server: any OpenAI-compatible `/v1/chat/completions` endpoint
(llama.cpp's llama-server, llama-cpp-python's `llama_cpp.server`, vLLM, SGLang).

`ServerGenerator` is a `Generator` like the in-process one, so the whole pipeline (answer,
support check, follow-up rewrite, shortening, translations) runs unchanged over HTTP:

- the answer streams (`stream: true`) at temperature 0, so a deterministic server is a valid
  evaluation backend;
- the support check's P(yes) comes from `logprobs` with `top_logprobs` on one token; a server
  without them is read by its one-word reply (1 or 0), with a note;
- branching on the first token's alternatives needs the model's state, which a server does not
  lend: it is off (one note), and so is the likelier-reply rule that needs it;
- tokens are counted by the server's tokenizer (`/tokenize` as llama-server has it, or
  `/extras/tokenize` as llama_cpp.server has it), else estimated at 3 bytes a token (`tokenizer`
  says which).

Several URLs spread the requests (each request starts at the next URL) and fail over: a server
that refuses the connection, times out or answers 502/503/504 is skipped, with a short backoff,
until every URL has been tried `rounds` times; all within `timeout` seconds, after which a
one-line error names each URL and what it said. A stream that breaks after its first token is
retried elsewhere only when nothing of it was shown yet.

>>> ServerGenerator.parse_urls("http://a:8080, http://b:8080/v1/")
['http://a:8080', 'http://b:8080']
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
import math
import threading
import time
from typing import Callable, Iterator

from rag.errors import RagError, redact
from rag.models.generation import Generation, Generator, record_usage

log = logging.getLogger("rag.remote")
RETRYABLE_STATUS = {502, 503, 504}
BACKOFF_SECONDS = 0.25  # doubled per round over all URLs


class ServerUnavailable(Exception):
    """One URL could not serve the request (the next may)."""


class ServerStats:
    """Per model-server URL, its password stripped: requests sent, requests that failed there, and
    failovers (a failed request tried again at another URL). Shared by a generator and its forks;
    what `rag serve`'s /metrics reports.

    >>> stats = ServerStats(["http://rag:s3cret@a:8080"])
    >>> stats.count("http://rag:s3cret@a:8080", "requests"); stats.snapshot()
    {'http://rag:***@a:8080': {'requests': 1, 'errors': 0, 'failovers': 0}}
    """

    KINDS = ("requests", "errors", "failovers")

    def __init__(self, urls: list[str]):
        self._lock = threading.Lock()
        self._counts = {redact(url): dict.fromkeys(self.KINDS, 0) for url in urls}

    def count(self, url: str, kind: str) -> None:
        with self._lock:
            self._counts.setdefault(redact(url), dict.fromkeys(self.KINDS, 0))[kind] += 1

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {url: dict(counts) for url, counts in self._counts.items()}


class ServerGenerator(Generator):
    def __init__(self, urls: list[str] | str, model: str | None = None, api_key: str | None = None,
                 timeout: float = 60.0, context_length: int = 4096, rounds: int = 2):
        self.urls = self.parse_urls(urls) if isinstance(urls, str) else [u.rstrip("/") for u in urls]
        if not self.urls:
            raise RagError("no model server URL given")
        if timeout <= 0:
            raise RagError("the model server timeout must be more than 0 seconds")
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.n_ctx = context_length
        self.rounds = rounds
        self.tokenizer = "not yet asked"
        self.logprobs: bool | None = None  # None: not yet known
        self._client = None
        self._next = itertools.count()
        self._lock = threading.Lock()
        self._notes: set[str] = set()
        self.stats = ServerStats(self.urls)

    @staticmethod
    def parse_urls(text: str) -> list[str]:
        """URLs separated by commas or spaces, without a trailing /v1 (the paths are added here)."""
        urls = [u.strip().rstrip("/") for u in text.replace(",", " ").split()]
        return [u[:-3] if u.endswith("/v1") else u for u in urls if u]

    # ---- identity ------------------------------------------------------------------------------

    @property
    def model_id(self) -> str:
        return f"{self.model or 'server model'}@{','.join(map(redact, self.urls))}"

    @property
    def context_length(self) -> int:
        return self.n_ctx

    @property
    def runtime(self) -> str:
        """The backend, recorded in evaluation reports: answers depend on it."""
        return f"model server {self.model or '?'} at {', '.join(map(redact, self.urls))}"

    def fork(self) -> ServerGenerator:
        """The same servers and connections with a stop flag of its own: one per concurrent request."""
        twin = copy.copy(self)
        twin._stop_requested = False
        return twin

    def note_once(self, text: str) -> None:
        if text not in self._notes:
            self._notes.add(text)
            log.warning("note: %s", text)

    # ---- HTTP with failover --------------------------------------------------------------------

    @property
    def client(self):
        import httpx

        with self._lock:
            if self._client is None:
                headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
                self._client = httpx.Client(headers=headers, timeout=self.timeout)
            return self._client

    def _attempts(self) -> Iterator[tuple[str, float]]:
        """(url, seconds left) for each try: every URL in turn from the next one, `rounds` times,
        with backoff between rounds, until the deadline."""
        deadline = time.monotonic() + self.timeout
        start = next(self._next) % len(self.urls)
        order = self.urls[start:] + self.urls[:start]
        for round_number in range(self.rounds):
            if round_number:
                time.sleep(min(BACKOFF_SECONDS * 2 ** (round_number - 1), max(0.0, deadline - time.monotonic())))
            for url in order:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                yield url, left

    def _request(self, path: str, body: dict, handle: Callable, streaming: bool = False):
        """`handle(response)` from the first server that serves POST `path`; RagError naming
        every URL's failure when none does."""
        import httpx

        failures: dict[str, str] = {}
        failed = None  # the URL the last try failed at: this try is a failover from it
        for url, left in self._attempts():
            if failed is not None:
                self.stats.count(failed, "failovers")
            self.stats.count(url, "requests")
            try:
                timeout = httpx.Timeout(min(self.timeout, left))
                if streaming:
                    with self.client.stream("POST", url + path, json=body, timeout=timeout) as response:
                        self._check(response, url)
                        return handle(response)
                response = self.client.post(url + path, json=body, timeout=timeout)
                self._check(response, url)
                return handle(response)
            except ServerUnavailable as exc:
                failures[url] = str(exc)
            except httpx.TimeoutException:
                failures[url] = f"no answer within {min(self.timeout, left):.0f} s"
            except httpx.TransportError as exc:
                failures[url] = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            except RagError:  # refused (a 4xx): not tried elsewhere, the others would refuse it too
                self.stats.count(url, "errors")
                raise
            self.stats.count(url, "errors")
            failed = url
            log.warning("model server %s: %s", redact(url), failures[url])
        tried = "; ".join(f"{redact(url)}: {why}" for url, why in failures.items()) or "no time left to try"
        raise RagError(f"no model server answered within {self.timeout:g} s ({tried})")

    def _check(self, response, url: str) -> None:
        if response.status_code in RETRYABLE_STATUS:
            raise ServerUnavailable(f"HTTP {response.status_code}")
        if response.status_code >= 400:
            response.read()
            try:
                message = response.json()["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = response.text[:200]
            raise RagError(f"the model server {redact(url)} refused the request (HTTP {response.status_code}): {message}")

    # ---- the Generator interface -----------------------------------------------------------------

    def load(self) -> None:
        """Ask the servers which model they serve (and so check that one answers)."""
        if self.model is not None:
            return
        import httpx

        failures = []
        for url in self.urls:
            try:
                response = self.client.get(f"{url}/v1/models", timeout=min(self.timeout, 10))
                self._check(response, url)
                self.model = response.json()["data"][0]["id"]
                return
            except (httpx.HTTPError, ServerUnavailable, KeyError, IndexError, ValueError) as exc:
                failures.append(f"{redact(url)}: {type(exc).__name__}: {exc}")
        raise RagError(f"no model server answered ({'; '.join(failures)})")

    def count_tokens(self, text: str) -> int:
        """The server's count where it has a tokenize route, else an estimate (3 bytes a token)."""
        import httpx

        routes = {"server /tokenize": ("/tokenize", {"content": text}),
                  "server /extras/tokenize": ("/extras/tokenize", {"input": text})}
        if self.tokenizer == "not yet asked" or self.tokenizer in routes:
            names = [self.tokenizer] if self.tokenizer in routes else list(routes)
            for url in self.urls:
                try:
                    for name in names:
                        path, body = routes[name]
                        response = self.client.post(url + path, json=body, timeout=min(self.timeout, 10))
                        if response.status_code == 200 and isinstance(response.json().get("tokens"), list):
                            self.tokenizer = name
                            return len(response.json()["tokens"])
                    break  # the server answered: it has no tokenize route
                except (httpx.HTTPError, ValueError):
                    continue  # down: ask the next one
            if self.tokenizer == "not yet asked":
                self.tokenizer = "estimated (3 bytes a token)"
                self.note_once("the model server has no tokenize route: the context budget is estimated")
        return math.ceil(len(text.encode("utf-8")) / 3)

    def generate(self, messages: list[dict], max_tokens: int, on_token: Callable[[str], None] | None = None,
                 alternatives: int = 0) -> Generation:
        if alternatives:
            self.note_once("through a model server the reply's first-token alternatives are off "
                           "(they need the model's state), and so is the likelier-reply rule")
        self.load()
        body = {"model": self.model, "messages": messages, "max_tokens": max_tokens, "temperature": 0,
                "seed": 0, "stream": True, "stream_options": {"include_usage": True}}
        started = time.perf_counter()
        shown: list[str] = []

        def read(response) -> Generation:
            pieces: list[str] = []
            first: float | None = None
            finish, usage = "stop", {}
            try:
                for line in response.iter_lines():
                    if self._stop_requested:
                        raise KeyboardInterrupt  # closing the stream ends the server's work
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    chunk = json.loads(data)
                    if "error" in chunk:
                        raise RagError(f"the model server failed: {chunk['error'].get('message', chunk['error'])}")
                    usage = chunk.get("usage") or usage
                    for choice in chunk.get("choices", []):
                        piece = (choice.get("delta") or {}).get("content") or ""
                        if piece:
                            first = first or time.perf_counter()
                            pieces.append(piece)
                            if on_token:
                                shown.append(piece)
                                on_token(piece)
                        finish = choice.get("finish_reason") or finish
            except Exception as exc:
                import httpx

                if isinstance(exc, httpx.TransportError) and not shown:
                    raise ServerUnavailable(f"the stream broke: {type(exc).__name__}") from None
                raise
            ended = time.perf_counter()
            first = first or ended
            record_server_usage(usage, len(pieces))
            return Generation("".join(pieces), "length" if finish == "length" else "stop",
                              usage.get("prompt_tokens", 0), usage.get("completion_tokens", len(pieces)),
                              first - started, ended - first)

        return self._request("/v1/chat/completions", body, read, streaming=True)

    def yes_probability(self, messages: list[dict]) -> float:
        """P(yes) / (P(yes) + P(no)) of the reply's first token, from the server's top logprobs."""
        self.load()
        body = {"model": self.model, "messages": messages, "max_tokens": 1, "temperature": 0, "seed": 0,
                "logprobs": True, "top_logprobs": 20}

        def read(response) -> float:
            record_server_usage(response.json().get("usage") or {}, 1)
            choice = response.json()["choices"][0]
            content = ((choice.get("logprobs") or {}).get("content") or [None])[0]
            if content and content.get("top_logprobs"):
                self.logprobs = True
                mass = {"yes": 0.0, "no": 0.0}
                for candidate in content["top_logprobs"]:
                    word = candidate["token"].strip().lower()
                    if word in mass:
                        mass[word] += math.exp(candidate["logprob"])
                total = mass["yes"] + mass["no"]
                return mass["yes"] / total if total > 0 else 0.0
            self.logprobs = False
            self.note_once("the model server gives no logprobs: the support check reads its yes/no reply (1 or 0)")
            reply = (choice.get("message") or {}).get("content") or ""
            return 1.0 if reply.strip().lower().startswith("yes") else 0.0

        return self._request("/v1/chat/completions", body, read)


def record_server_usage(usage: dict, completion_estimate: int) -> None:
    """A server's OpenAI `usage` as model work: its prompt tokens less those it says it had cached."""
    prompt = int(usage.get("prompt_tokens") or 0)
    cached = int(((usage.get("prompt_tokens_details") or {}).get("cached_tokens")) or 0)
    record_usage(prompt - cached, cached, int(usage.get("completion_tokens", completion_estimate) or 0))
