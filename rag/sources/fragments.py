"""Links to a quoted sentence on the publisher's page: URL text fragments (`#:~:text=`), as the
WICG "URL Fragment Text Directives" spec writes them (Chromium 80+, Safari 16.1+, Firefox 131+).

    #:~:text=[prefix-,]start[,end][,-suffix]

Each part is percent-encoded outside the spec's safe set, so `-`, `,` and `&` (which `quote`
leaves alone or which split the directive) are encoded too. A long quote is named by its first and
last words (`start,end`). A browser highlights the *first* match, so when the quote's first words
stand earlier in the article, words before it (a prefix that must end right where the quote
begins) or after it (a suffix) are added until the quote's own occurrence comes first.

>>> text = "Er sagte: Wir kommen - gern. Sie sagte: Wir kommen - gern."
>>> source_link("https://example.de/a.html", text, text.rindex("Wir"), len(text))
'https://example.de/a.html#:~:text=Sie%20sagte:-,Wir%20kommen%20%2D%20gern.'
"""

from __future__ import annotations

import re

SAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!$'()*+./:;=?@_~")
LONG_QUOTE_WORDS = 10  # a longer quote is named by its first and last EDGE_WORDS words
EDGE_WORDS = 4
MAX_CONTEXT_WORDS = 5


def encode(part: str) -> str:
    """Percent-encode a directive part: every byte outside the spec's safe set.

    >>> encode("Xi-Jinping, 20 & mehr"), encode("Grüße")
    ('Xi%2DJinping%2C%2020%20%26%20mehr', 'Gr%C3%BC%C3%9Fe')
    """
    return "".join(ch if ch in SAFE else "".join(f"%{b:02X}" for b in ch.encode("utf-8")) for ch in part)


def source_link(url: str, text: str, start: int, end: int) -> str:
    """`url` with a text fragment naming text[start:end], its own occurrence in `text` (an
    approximation of the page as the browser reads it: the article without its furniture)."""
    words = _words(text, start, end)
    if not words:
        return url
    if len(words) > LONG_QUOTE_WORDS:
        first, last = " ".join(w for w, _, _ in words[:EDGE_WORDS]), " ".join(w for w, _, _ in words[-EDGE_WORDS:])
        parts = [first, last]
    else:
        parts = [" ".join(w for w, _, _ in words)]
    before = [w for w, _, _ in _words(text, 0, start)]
    after = [w for w, _, _ in _words(text, end, len(text))]
    quote_at = words[0][1]
    prefix = suffix = ""
    for count in range(MAX_CONTEXT_WORDS + 1):
        prefix = " ".join(before[len(before) - count:]) if count else ""
        if _first_match(text, prefix, parts, "") == quote_at:
            break
    else:
        prefix = ""
        for count in range(1, MAX_CONTEXT_WORDS + 1):
            suffix = " ".join(after[:count])
            if _first_match(text, "", parts, suffix) == quote_at:
                break
    directive = ([encode(prefix) + "-"] if prefix else []) + [encode(p) for p in parts] + \
                (["-" + encode(suffix)] if suffix else [])
    return f"{url.split('#', 1)[0]}#:~:text={','.join(directive)}"


def _words(text: str, start: int, end: int) -> list[tuple[str, int, int]]:
    """(word, start, end) of the white-space separated words of text[start:end], at document offsets."""
    return [(m.group(), start + m.start(), start + m.end()) for m in re.finditer(r"\S+", text[start:end])]


def _first_match(text: str, prefix: str, parts: list[str], suffix: str) -> int | None:
    """Where a browser's first match of the directive starts (its start part), white space folded."""
    space = r"\s+"
    pattern = (re.escape(prefix).replace(r"\ ", space) + space if prefix else "") + \
        "(" + re.escape(parts[0]).replace(r"\ ", space) + ")" + \
        ("(?:.|\n)*?" + re.escape(parts[1]).replace(r"\ ", space) if len(parts) > 1 else "") + \
        (space + re.escape(suffix).replace(r"\ ", space) if suffix else "")
    found = re.search(pattern, text)
    return found.start(1) if found else None
