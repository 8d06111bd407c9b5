"""Source markers: the "[n]" and "[n, m]" by which an answer cites its numbered sources.

Plain text handling, below the citation logic, so that both the answer checks (citations, shaping)
and the number checks (text.numbers) read markers the same way.

>>> cited_numbers("Mehr als 20 [2]. Moskau [1, 2].")
[2, 1]
"""

from __future__ import annotations

import re

MARKER = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")


def cited_numbers(text: str) -> list[int]:
    """Source numbers in order of first appearance: "a [2] b [1, 2]" -> [2, 1]."""
    seen: list[int] = []
    for match in MARKER.finditer(text):
        for number in re.split(r"\s*[,;]\s*", match.group(1)):
            if int(number) not in seen:
                seen.append(int(number))
    return seen


def strip_markers(text: str) -> str:
    """The answer without its source markers and the space before them.

    >>> strip_markers("more than 20 [2]"), strip_markers("Moskau [1].")
    ('more than 20', 'Moskau.')
    """
    return re.sub(r"\s*" + MARKER.pattern, "", text).strip()


def rewrite_markers(text: str, mapping: dict[int, int | None]) -> str:
    """Renumber markers by `mapping` (None drops a number; a marker left empty disappears).

    >>> rewrite_markers("Ja [4]. Nein [7, 2].", {4: 1, 7: None})
    'Ja [1]. Nein [2].'
    """
    def renumber(match: re.Match) -> str:
        kept: list[str] = []
        for n in re.split(r"\s*[,;]\s*", match.group(1)):
            new = mapping.get(int(n), int(n))
            if new is not None and str(new) not in kept:
                kept.append(str(new))
        return f"[{', '.join(kept)}]" if kept else ""

    return re.sub(r"[ \t]+([.,;:!?])", r"\1", MARKER.sub(renumber, text)).strip()
