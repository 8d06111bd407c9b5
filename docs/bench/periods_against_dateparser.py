"""The question-time table of tests/test_periods.py read by dateparser, as the issue's baseline:
how many of its expressions dateparser finds a date in, how many of those fall inside the expected
range, and how many are exact (it gives a point, so only one-day ranges can be); then the same for
rag's rules (rag/text/periods.py), with the time each takes.

    python docs/bench/periods_against_dateparser.py
"""

import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

import dateparser  # noqa: E402
from dateparser.search import search_dates  # noqa: E402
from test_periods import HELD_OUT, TABLE, TODAY  # noqa: E402

from rag.text.periods import find_period  # noqa: E402


def main() -> None:
    settings = {"RELATIVE_BASE": datetime(TODAY.year, TODAY.month, TODAY.day), "PREFER_DATES_FROM": "past"}
    for name, table in (("table", TABLE), ("held-out", HELD_OUT)):
        named = [(q, s, e) for q, s, e in table if s is not None]
        found = inside = exact = 0
        started = time.perf_counter()
        for question, start, end in named:
            hits = search_dates(question, languages=["de", "en"], settings=settings) or []
            if hits:
                found += 1
                day = hits[0][1].date()
                inside += start <= day <= end
                exact += start == end == day
        took = (time.perf_counter() - started) / len(named) * 1000
        print(f"{name}: dateparser {dateparser.__version__}: of {len(named)} expressions naming a period, a date found "
              f"in {found}, inside the expected range {inside}, exact {exact}; {took:.1f} ms each")
        started = time.perf_counter()
        right = sum(1 for q, s, e in table if (lambda p: (p.start, p.end) if p else (None, None))(
            find_period(q, TODAY)) == (s, e))
        took = (time.perf_counter() - started) / len(table) * 1000
        print(f"{name}: rag's rules: {right} of {len(table)} exact (questions naming no period included); "
              f"{took:.2f} ms each")


if __name__ == "__main__":
    main()
