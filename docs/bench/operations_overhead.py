"""What metrics and JSON logs cost `rag serve`: `rag bench http` against the server before they
existed (a git worktree of BEFORE, default edb2776), and with them (this tree) with text and with
JSON logs, in turns (before, text, json, before, …) so that the machine's drift hits each alike.

    python docs/bench/operations_overhead.py [--real N] [--fake N] [--rounds R] [--before COMMIT]

--fake N: N questions at concurrency 4 to the fake models (tests/fake_rag.py, no model time: the
HTTP, queue, metrics and logging path alone, where an overhead would show most). --real N: the
first N questions of eval/questions.jsonl at concurrency 1 to the real default models. Prints one
line per run and the medians per variant.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import SEEDS, free_port, stop_server, wait_until_healthy  # noqa: E402

RAG = Path(sys.executable).parent / "rag"


def serve(code: Path, index: Path, fake: bool, log_format: str | None, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, str(ROOT / "tests" / "fake_rag.py")] if fake else [str(RAG)]
    command += ["serve", "--index", str(index), "--port", str(port)] + (["--log-format", log_format] if log_format else [])
    env = {**os.environ, "PYTHONPATH": str(code), "RAG_API_KEY": "", "FAKE_DELAY": "0"}
    process = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, cwd=code)
    url = f"http://127.0.0.1:{port}"
    wait_until_healthy(url, process, timeout=300)
    return process, url


def bench(url: str, questions: int, concurrency: int, folder: Path) -> dict:
    """`rag bench http` with the evaluation set's questions, taken in turn until there are `questions`."""
    asked = [json.loads(line)["question"] for line in (ROOT / "eval" / "questions.jsonl").read_text().splitlines()]
    (folder / "questions.txt").write_text("".join(asked[n % len(asked)] + "\n" for n in range(questions)))
    report = folder / "load.json"
    subprocess.run([str(RAG), "bench", "http", "--url", url, "--set", str(folder / "questions.txt"), "--concurrency",
                    str(concurrency), "--json", str(report)], check=True, capture_output=True, cwd=ROOT)
    return json.loads(report.read_text())["summary"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fake", type=int, default=0)
    parser.add_argument("--real", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", default="edb2776")
    options = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="rag-overhead-"))
    before = folder / "before"
    subprocess.run(["git", "worktree", "add", "--detach", str(before), options.before], cwd=ROOT, check=True,
                   capture_output=True)
    try:
        run(options, folder, before)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=ROOT, capture_output=True)


def run(options, folder: Path, before: Path) -> None:
    from fakes import FakeEmbedder

    from rag.app import pipeline
    from rag.store.sqlite import build_index

    variants = [("before", before, None), ("text", ROOT, "text"), ("json", ROOT, "json")]
    for kind, questions, concurrency in (("fake", options.fake, 4), ("real", options.real, 1)):
        if not questions:
            continue
        index = folder / f"{kind}-index"
        build_index([SEEDS], index, FakeEmbedder(max_tokens=256) if kind == "fake" else pipeline.make_embedder())
        rates: dict[str, list[float]] = {name: [] for name, _, _ in variants}
        medians: dict[str, list[float]] = {name: [] for name, _, _ in variants}
        for round_number in range(options.rounds):
            for name, code, log_format in variants:
                process, url = serve(code, index, kind == "fake", log_format, folder / f"{kind}-{name}.log")
                try:
                    bench(url, min(questions, 4), concurrency, folder)  # warm: first answers load prompt states
                    started = time.perf_counter()
                    summary = bench(url, questions, concurrency, folder)
                finally:
                    stop_server(process)
                assert summary["statuses"] == {"200": questions}, summary
                rates[name].append(summary["answers_per_minute"])
                medians[name].append(summary["latency_seconds"]["median"])
                print(f"{kind} round {round_number + 1} {name}: {summary['answers_per_minute']} answers/min, "
                      f"median {summary['latency_seconds']['median']:.4f} s ({time.perf_counter() - started:.1f} s)",
                      flush=True)
        for name in rates:
            print(f"{kind} {name}: median of {options.rounds} rounds {statistics.median(rates[name]):.1f} answers/min, "
                  f"latency median {statistics.median(medians[name]):.4f} s; "
                  f"{statistics.median(rates[name]) / statistics.median(rates['before']):.3f}x before's rate")


if __name__ == "__main__":
    main()
