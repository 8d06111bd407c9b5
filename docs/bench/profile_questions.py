"""Where a question's time goes: questions of the seed set answered warm under cProfile.

    python docs/bench/profile_questions.py INDEX_DIR [N]

Opens the answerer as `rag eval` does, answers the first question unmeasured (the system
prompts' states are made there), then profiles questions 2 to N+1 (default 10) and prints the
functions by their own time: `llama_decode` is the model, the rest is ours.
"""

import cProfile
import pstats
import sys
import time
from pathlib import Path

from rag.app import pipeline
from rag.quality.evaluation import load_eval_set

ROOT = Path(__file__).resolve().parents[2]


def main(index_dir: str, count: int = 10) -> None:
    questions = load_eval_set(ROOT / "eval" / "questions.jsonl")
    answerer = pipeline.open_answerer(Path(index_dir))
    answerer.warm_up()
    answerer.ask(questions[0].question)
    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.enable()
    for q in questions[1:1 + count]:
        answerer.ask(q.question)
    profile.disable()
    print(f"{answerer.generator.runtime}\n{count} questions, {time.perf_counter() - started:.1f} s")
    pstats.Stats(profile).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) for a in sys.argv[2:3]))
