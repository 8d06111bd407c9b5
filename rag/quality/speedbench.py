"""`rag bench speed`: where a question's time goes, and how far it is from the model's own speed.

Each question of an evaluation set is answered with the models warm (one question first, not
counted), recording its seconds by stage and its model work over every call (`ModelUsage`:
prompt tokens evaluated, prompt tokens reused from a saved state, tokens generated, calls by
purpose). Then, in the same run and on the same loaded model, bare llama-cpp-python reads a prompt
as long as the median call's and generates from it (`Llama.eval`): its prompt and generation rates give what
the model alone would need for each question's tokens,

    bare seconds = evaluated prompt tokens / prompt rate + generated tokens / generation rate

and `overhead_ratio` is the questions' seconds over their bare seconds (1.0: nothing but the
model's own work).
"""

from __future__ import annotations

import statistics
import time
from typing import Callable

import numpy as np

from rag.errors import RagError
from rag.models.llama import LlamaGenerator
from rag.quality.evaluation import EvalQuestion, answer_is_correct

BARE_GENERATED_TOKENS = 32
BARE_REPEATS = 3


def bare_rates(generator, prompt_tokens: int, text: str) -> tuple[float, float]:
    """(prompt tokens/s, generated tokens/s) of llama-cpp-python's own `Llama.eval` on this
    generator's model: a prompt of `prompt_tokens` tokens cut from `text` read from an empty
    cache, then greedy tokens one at a time (argmax of the logits, nothing else)."""
    if not isinstance(generator, LlamaGenerator):
        raise RagError("rag bench speed measures the in-process model; through a model server, the server's own "
                       "metrics tell its speed")
    llm = generator._load()
    tokens = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
    while len(tokens) < prompt_tokens:
        tokens = tokens + tokens
    tokens = tokens[:max(prompt_tokens, 8)]

    def next_token() -> int:
        return int(np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(llm.n_vocab(),)).argmax())

    prompt_rates, generation_rates = [], []
    for _ in range(BARE_REPEATS):
        llm.reset()
        started = time.perf_counter()
        llm.eval(tokens)
        token = next_token()
        read = time.perf_counter()
        for _ in range(BARE_GENERATED_TOKENS):
            llm.eval([token])
            token = next_token()
        done = time.perf_counter()
        prompt_rates.append(len(tokens) / (read - started))
        generation_rates.append(BARE_GENERATED_TOKENS / (done - read))
    llm.reset()  # the pipeline starts every prompt from a saved state or from empty: nothing carries over
    return statistics.median(prompt_rates), statistics.median(generation_rates)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else 0.0


def run_speed_bench(answerer, questions: list[EvalQuestion], sample_text: str,
                    on_done: Callable[[dict], None] | None = None,
                    measure_bare: Callable[..., tuple[float, float]] = bare_rates, isolated: bool = False) -> dict:
    """Answer `questions` warm, measure the bare model, and report per question and overall.

    `isolated`: each question reads its prompts as if it came first (the saved states of earlier
    questions' sources are dropped before it; the system prompts' stay), as `rag ask` does.
    """
    if not questions:
        raise RagError("no questions to measure")
    answerer.warm_up()
    answerer.ask(questions[0].question)  # the system prompts' saved states are made here, not counted
    rows = []
    for q in questions:
        if isolated:
            answerer.generator.forget_prompts()
        started = time.perf_counter()
        answer = answerer.ask(q.question)
        seconds = time.perf_counter() - started
        usage = answer.usage
        rows.append({"id": q.id, "seconds": seconds, "correct": answer_is_correct(q, answer.answer, answer.abstained),
                     "answer": answer.answer, "prompt_tokens": usage.prompt, "cached_tokens": usage.cached,
                     "completion_tokens": usage.completion, "calls": dict(usage.calls),
                     "stages": {k: round(v, 4) for k, v in answer.timings.items() if k != "total"}})
        if on_done:
            on_done(rows[-1])
    per_call = [r["prompt_tokens"] / max(sum(r["calls"].values()), 1) for r in rows]
    prompt_rate, generation_rate = measure_bare(answerer.generator, round(statistics.median(per_call)), sample_text)
    for row in rows:
        row["bare_seconds"] = row["prompt_tokens"] / prompt_rate + row["completion_tokens"] / generation_rate
    seconds = [r["seconds"] for r in rows]
    stages = sorted({stage for r in rows for stage in r["stages"]})
    return {
        "questions": len(rows),
        "isolated": isolated,
        "median_seconds": statistics.median(seconds),
        "p95_seconds": percentile(seconds, 95),
        "median_prompt_tokens": statistics.median(r["prompt_tokens"] for r in rows),
        "p95_prompt_tokens": percentile([r["prompt_tokens"] for r in rows], 95),
        "median_cached_tokens": statistics.median(r["cached_tokens"] for r in rows),
        "median_completion_tokens": statistics.median(r["completion_tokens"] for r in rows),
        "median_calls": statistics.median(sum(r["calls"].values()) for r in rows),
        "calls": {purpose: sum(r["calls"].get(purpose, 0) for r in rows)
                  for purpose in sorted({p for r in rows for p in r["calls"]})},
        "median_stage_seconds": {stage: statistics.median(r["stages"].get(stage, 0.0) for r in rows) for stage in stages},
        "raw_prompt_tokens_per_s": prompt_rate,
        "raw_generation_tokens_per_s": generation_rate,
        "bare_prompt_length": round(statistics.median(per_call)),
        "median_bare_seconds": statistics.median(r["bare_seconds"] for r in rows),
        "overhead_ratio": sum(seconds) / max(sum(r["bare_seconds"] for r in rows), 1e-9),
        "accuracy": sum(r["correct"] for r in rows) / len(rows),
        "runtime": answerer.generator.runtime,
        "rows": rows,
    }
