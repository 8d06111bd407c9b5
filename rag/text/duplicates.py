"""Near-duplicate passages: the same text published by two sites (an agency's report, say) is two
documents, but a reader wants the passage once among the search results and in the prompt.

Two chunks are near-duplicates when their word 3-shingles overlap by `NEAR_DUPLICATE` or more
(Jaccard): the same report in another case, spacing or line breaking, or with a word or two
changed in a passage of chunk length, still counts; two neighbouring chunks of one article, which
share only their overlap, do not.

>>> report = "Beide Seiten unterzeichneten mehr als 20 Kooperationsabkommen in den Bereichen Energie und Luftfahrt."
>>> near_duplicates(report, "  " + report.upper().replace("LUFTFAHRT.", "LUFTFAHRT,\\nsagte Xi."))
True
>>> near_duplicates(report, "Putin nannte Xi einen lieben Freund. Xi bezeichnete Putin als alten Freund.")
False
"""

from __future__ import annotations

import re

NEAR_DUPLICATE = 0.8


def shingles(text: str, size: int = 3) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i:i + size]) for i in range(max(1, len(words) - size + 1))} if words else set()


def near_duplicates(a: str, b: str, threshold: float = NEAR_DUPLICATE) -> bool:
    first, second = shingles(a), shingles(b)
    if not first or not second:
        return a.strip() == b.strip()
    return len(first & second) / len(first | second) >= threshold
