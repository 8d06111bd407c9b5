"""Bare prompt speed by batch length: how fast llama.cpp reads one batch of N tokens.

    python docs/bench/batch_rates.py

`Llama.eval` of one batch of 4 to 300 tokens of a seed article, from an empty cache and after
300 tokens already read, three times each; prints the median tokens per second. Short batches
are memory-bound (the weights are read once a batch), so they gain least from wider instructions.
"""

import statistics
import time
from pathlib import Path

from rag.app import pipeline

ROOT = Path(__file__).resolve().parents[2]
LENGTHS = (4, 8, 16, 32, 48, 64, 96, 140, 200, 300)


def main() -> None:
    generator = pipeline.make_generator()
    llm = generator._load()
    text = "\n".join(path.read_text(encoding="utf-8") for path in sorted((ROOT / "seeds").glob("*.txt")))
    tokens = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
    print(generator.runtime)
    for start in (0, 300):
        for length in LENGTHS:
            seconds = []
            for _ in range(3):
                llm.reset()
                if start:
                    llm.eval(tokens[:start])
                began = time.perf_counter()
                llm.eval(tokens[start:start + length])
                seconds.append(time.perf_counter() - began)
            median = statistics.median(seconds)
            print(f"after {start:3d} tokens, a batch of {length:3d}: {median * 1000:7.1f} ms, {length / median:6.1f} tokens/s")


if __name__ == "__main__":
    main()
