"""The scrapinghub article-extraction-benchmark (181 pages, its ground truth, its own `evaluate.py`)
on the text rag indexes for each page, beside trafilatura's default settings in the same run.

    python docs/bench/extraction_benchmark.py PATH/TO/article-extraction-benchmark

The benchmark is a public repository (scrapinghub/article-extraction-benchmark): check it out
anywhere; nothing of it is copied here. `rag` is `rag.sources.pages.read_page` as `rag index` calls
it: "text extracted" scores the text of every page, "as indexed" scores a page under the article
minimum (400 characters, skipped by `rag index`) as empty; `trafilatura default` is the
benchmark's own runner (`trafilatura.extract(html, include_comments=False)`). Scores come from the
benchmark's `evaluate.evaluate` (shingle precision, recall, F1, with bootstrap errors).
"""

import gzip
import json
import sys
import time
from pathlib import Path


def main(benchmark: str) -> None:
    import trafilatura

    from rag.sources.pages import read_page

    root = Path(benchmark)
    sys.path.insert(0, str(root))
    import evaluate  # the benchmark's own scoring

    truth = json.loads((root / "ground-truth.json").read_text())
    ours, default, seconds, short = {}, {}, 0.0, 0
    for key, item in truth.items():
        raw = gzip.decompress((root / "html" / f"{key}.html.gz").read_bytes())
        started = time.perf_counter()
        try:
            text = read_page(raw, item.get("url"), min_chars=1).text
        except ValueError:
            text = ""
        seconds += time.perf_counter() - started
        short += len(text) < 400
        ours[key] = {"articleBody": text}
        default[key] = {"articleBody": trafilatura.extract(raw.decode("utf-8", "replace"), include_comments=False) or ""}
    print(f"pages {len(truth)}; rag's text under its 400-character article minimum: {short}; "
          f"{seconds / len(truth) * 1000:.0f} ms a page")
    print(f"{'':<22} {'F1':<13}  {'precision':<13}  {'recall':<13}  {'accuracy':<13}")
    indexed = {key: value if len(value["articleBody"]) >= 400 else {"articleBody": ""} for key, value in ours.items()}
    for name, prediction in (("rag, text extracted", ours), ("rag, as indexed", indexed),
                             ("trafilatura default", default)):
        m = evaluate.evaluate(truth, prediction, 1000)
        print(f"{name:<22} {m['f1']:.3f} ± {m['f1_std']:.3f}  {m['precision']:.3f} ± {m['precision_std']:.3f}  "
              f"{m['recall']:.3f} ± {m['recall_std']:.3f}  {m['accuracy']:.3f} ± {m['accuracy_std']:.3f}")


if __name__ == "__main__":
    main(sys.argv[1])
