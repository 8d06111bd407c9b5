"""One article, one address: canonical URLs and the document ids derived from them.

The same article reaches a reader by many URLs: with tracking parameters, through an AMP or
mobile host, with or without a trailing slash. `canonical_url` folds them into one, and
`document_id` turns that into a stable, readable id (host and path; a short hash only where the
path alone would not tell two articles apart, or would be too long).

>>> canonical_url("HTTPS://m.Example.de:443/politik/artikel-1/amp/?utm_source=x&id=7#top")
'https://example.de/politik/artikel-1?id=7'
>>> document_id("https://www.tagesschau.de/ausland/asien/putin-xi-101.html")
'tagesschau.de/ausland/asien/putin-xi-101'
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters that say where a click came from, not which article it is.
TRACKING_PARAMETERS = {"fbclid", "gclid", "dclid", "msclkid", "yclid", "igshid", "mc_cid", "mc_eid", "ref", "ref_src",
                       "wt_mc", "wt_zmc", "xtor", "at_medium", "at_campaign", "at_custom1", "ito", "cmpid", "ns_mchannel",
                       "ns_source", "ns_campaign", "ocid", "outputtype", "amp", "share", "s_cid", "icid", "src"}
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "at_", "wt_")
# Hosts that serve the same articles as the main one.
MIRROR_HOST_PREFIXES = ("www.", "m.", "mobile.", "amp.")
MAX_ID_LENGTH = 120


def is_web_address(text: str) -> bool:
    """An http(s) address, as `rag index` tells one from a path.

    >>> is_web_address("https://a.de/x"), is_web_address("seeds/a.txt"), is_web_address("ftp://a.de")
    (True, False, False)
    """
    return bool(re.match(r"https?://[^/\s]", text, re.I))


def canonical_url(url: str) -> str:
    """The one URL of an article: lower-case scheme and host without mirror prefixes or default
    port, no fragment, no tracking parameters, no AMP suffix, no trailing slash.

    >>> canonical_url("https://amp.zeit.de/news/2025-09/02/putin.amp?wt_zmc=nl")
    'https://zeit.de/news/2025-09/02/putin'
    >>> canonical_url("http://example.de/")
    'http://example.de/'
    """
    parts = urlsplit(url.strip())
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower().rstrip(".")
    for prefix in MIRROR_HOST_PREFIXES:
        if host.startswith(prefix) and host.count(".") >= 2:
            host = host[len(prefix):]
            break
    port = parts.port
    netloc = host if port is None or (scheme, port) in (("http", 80), ("https", 443)) else f"{host}:{port}"
    path = re.sub(r"/{2,}", "/", parts.path or "/")
    path = re.sub(r"(/amp|\.amp|/amp\.html)/?$", "", path, flags=re.I) or "/"
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k.lower() not in TRACKING_PARAMETERS and not k.lower().startswith(TRACKING_PREFIXES)]
    return urlunsplit((scheme, netloc, path, urlencode(query), ""))


def document_id(url: str) -> str:
    """A readable id from the canonical URL: host (without `www.`) and path, without a page suffix
    such as `.html`; query parameters that name the article add a short hash of them.

    >>> document_id("https://www.spiegel.de/politik/ausland/putin-und-xi-a-1234.html?utm_medium=rss")
    'spiegel.de/politik/ausland/putin-und-xi-a-1234'
    >>> document_id("https://example.de/artikel.php?id=7"), document_id("https://example.de/artikel.php?id=8")
    ('example.de/artikel-9b8ab31d', 'example.de/artikel-b446ff54')
    """
    canonical = canonical_url(url)
    parts = urlsplit(canonical)
    path = re.sub(r"\.(html?|php|aspx?|jsp|cms)$", "", parts.path, flags=re.I).strip("/")
    readable = re.sub(r"[^A-Za-z0-9._/~-]+", "-", f"{parts.netloc}/{path}".strip("/")).strip("-")
    readable = re.sub(r"-{2,}", "-", readable)
    if parts.query or len(readable) > MAX_ID_LENGTH:
        digest = hashlib.sha256(canonical.encode()).hexdigest()[:8]
        readable = f"{readable[:MAX_ID_LENGTH - 9].rstrip('-/')}-{digest}"
    return readable
