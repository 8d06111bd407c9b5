"""Benchmarks on XQuAD (German paragraphs, the same questions in German and English).

Each paragraph becomes one document, indexed exactly as `rag index` does it; every question is
asked in both languages. Retrieval: recall@1/3/5 and MRR of the gold paragraph per question
language and retrieval variant, query latency, index build time. Answers: EM, token F1,
contains-gold, citation precision, verified-quote and abstention rates, seconds per question,
optionally journaled to a results file so that a run of hours can be stopped and continued.
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from rag import __version__
from rag.answer.answering import QuestionAnswerer
from rag.errors import RagError
from rag.fileio import open_for_appending_lines, read_json_lines, sha256_bytes
from rag.models.embedding import Embedder
from rag.quality.evaluation import (
    best_over,
    contains_answer,
    exact_match,
    latency_summary,
    recall_at_k,
    reciprocal_rank,
    token_f1,
)
from rag.search.retrieval import RetrievalSettings, Retriever
from rag.store.base import Store
from rag.store.locations import Location, build_store, open_store
from rag.text.chunking import ChunkerSettings
from rag.text.markers import strip_markers

LANGUAGES = ("de", "en")


@dataclass(frozen=True)
class XQuADQuestion:
    id: str
    doc_id: str
    question: dict[str, str]  # language -> question
    answers: dict[str, list[str]]  # language -> gold answers


@dataclass
class XQuAD:
    paragraphs: dict[str, str]  # doc_id -> German paragraph
    questions: list[XQuADQuestion]


def load_xquad(folder: Path) -> XQuAD:
    """Read xquad.de.dev.json and xquad.en.dev.json (parallel: same ids, same order)."""
    try:
        data = {lang: json.loads((Path(folder) / f"xquad.{lang}.dev.json").read_text())["data"] for lang in LANGUAGES}
    except (OSError, ValueError, KeyError) as exc:
        raise RagError(f"{folder} does not hold a readable xquad.de.dev.json and xquad.en.dev.json ({exc})") from None
    paragraphs: dict[str, str] = {}
    questions: list[XQuADQuestion] = []
    for a, (article_de, article_en) in enumerate(zip(data["de"], data["en"])):
        for p, (para_de, para_en) in enumerate(zip(article_de["paragraphs"], article_en["paragraphs"])):
            doc_id = f"xquad-a{a:02d}-p{p:02d}"
            paragraphs[doc_id] = para_de["context"]
            english = {qa["id"]: qa for qa in para_en["qas"]}
            for qa in para_de["qas"]:
                en = english[qa["id"]]
                questions.append(XQuADQuestion(qa["id"], doc_id, {"de": qa["question"], "en": en["question"]},
                                               {"de": [x["text"] for x in qa["answers"]],
                                                "en": [x["text"] for x in en["answers"]]}))
    return XQuAD(paragraphs, questions)


def write_corpus(xquad: XQuAD, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for doc_id, text in xquad.paragraphs.items():
        path = folder / f"{doc_id}.txt"
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    return folder


def index_xquad(xquad: XQuAD, embedder: Embedder, chunker: ChunkerSettings,
                store: Location | None = None) -> tuple[Store, float]:
    """The paragraphs indexed afresh as `rag index` does it, and the seconds the build took.
    The index lives in a temporary folder removed when the process ends, or in `store` (an empty
    one: a PostgreSQL schema of its own, say)."""
    tmp = Path(tempfile.mkdtemp(prefix="rag-xquad-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    corpus = write_corpus(xquad, tmp / "docs")
    target = tmp / "index" if store is None else store
    started = time.perf_counter()
    build_store([corpus], target, embedder, chunker)
    build_seconds = time.perf_counter() - started
    return open_store(target, embedder.model_id), build_seconds


def sample(questions: list[XQuADQuestion], limit: int | None) -> list[XQuADQuestion]:
    """`limit` questions spread evenly over the set (every article, not just the first ones)."""
    if not limit or limit >= len(questions):
        return questions
    step = len(questions) / limit
    return [questions[int(i * step)] for i in range(limit)]


@dataclass(frozen=True)
class Variant:
    """How one retrieval variant queries: mode, and whether each retriever sees the translation."""

    name: str
    mode: str
    lexical_translated: bool = False
    dense_translated: bool = False


VARIANTS = (
    Variant("dense", "dense"),
    Variant("bm25", "bm25"),
    Variant("hybrid", "hybrid"),
    Variant("dense+mt", "dense", dense_translated=True),
    Variant("bm25+mt", "bm25", lexical_translated=True),
    Variant("hybrid+mt", "hybrid", lexical_translated=True),  # what `rag ask` does
    Variant("hybrid+mt-both", "hybrid", lexical_translated=True, dense_translated=True),
)


@dataclass
class RetrievalRow:
    variant: str
    language: str
    questions: int
    recall: dict[int, float]
    mrr: float
    latency: dict[str, float]


@dataclass
class RetrievalReport:
    rows: list[RetrievalRow]
    build_seconds: float
    chunks: int
    documents: int
    translation_seconds: list[float] = field(default_factory=list)


def retrieval_benchmark(xquad: XQuAD, embedder: Embedder, translate: Callable[[str, str], tuple[str, float]] | None,
                        settings: RetrievalSettings = RetrievalSettings(),
                        chunker: ChunkerSettings = ChunkerSettings(), variants: tuple[Variant, ...] = VARIANTS,
                        limit: int | None = None, ks: tuple[int, ...] = (1, 3, 5),
                        on_progress: Callable[[str], None] | None = None,
                        store: Location | None = None) -> RetrievalReport:
    """Index the paragraphs afresh (timed; into `store` when given), then run every variant over
    every question and language."""
    questions = sample(xquad.questions, limit)
    index, build_seconds = index_xquad(xquad, embedder, chunker, store)
    retriever = Retriever(index, embedder, settings)
    translation_seconds: list[float] = []
    translations: dict[str, str] = {}
    if translate and any(v.lexical_translated or v.dense_translated for v in variants):
        for i, q in enumerate(questions):
            translations[q.id], seconds = translate(q.question["en"], "de")
            translation_seconds.append(seconds)
            if on_progress and i % 25 == 0:
                on_progress(f"translated {i + 1}/{len(questions)}")
    rows = []
    for variant in variants:
        if (variant.lexical_translated or variant.dense_translated) and not translations:
            continue
        for lang in LANGUAGES:
            recalls = {k: 0.0 for k in ks}
            mrr = 0.0
            seconds = []
            for q in questions:
                text = q.question[lang]
                # As in `rag ask`: only a question in another language than the corpus is translated.
                translated = translations.get(q.id) if lang == "en" else None
                started = time.perf_counter()
                result = retriever.search(text, k=max(ks), mode=variant.mode,
                                          lexical_query=translated if variant.lexical_translated else None,
                                          dense_query=translated if variant.dense_translated else None)
                seconds.append(time.perf_counter() - started)
                ranked = [r.chunk.doc_id for r in result.chunks]
                for k in ks:
                    recalls[k] += recall_at_k(ranked, {q.doc_id}, k)
                mrr += reciprocal_rank(ranked, {q.doc_id})
            n = len(questions)
            rows.append(RetrievalRow(variant.name, lang, n, {k: v / n for k, v in recalls.items()}, mrr / n,
                                     latency_summary(seconds)))
            if on_progress:
                on_progress(f"{variant.name}/{lang}: R@5 {rows[-1].recall[max(ks)]:.3f}")
    return RetrievalReport(rows, build_seconds, index.chunk_count, len(index.documents), translation_seconds)


@dataclass
class AnswerRow:
    language: str
    questions: int
    exact_match: float
    f1: float
    contains: float
    citation_precision: float | None
    verified_rate: float | None
    abstention_rate: float
    seconds: dict[str, float]


@dataclass(frozen=True)
class ScoredAnswer:
    """One question answered and scored: a line of a benchmark's results file."""

    language: str
    id: str
    answer: str
    abstained: bool
    support: float | None
    exact_match: float
    f1: float
    contains: float
    cited: int  # citations the model made
    verified: int  # of those, shown to the user (quote verified)
    precise: int  # of those shown, in the gold paragraph or holding the gold answer
    seconds: float


RESULTS_FORMAT = "rag-bench-answers"
RESULTS_VERSION = 1


def score_answer(answer: dict, q: XQuADQuestion, language: str, chunk_text: dict[str, str]) -> ScoredAnswer:
    """Score an answer (`Answer.to_json()`) against the gold answers of `q` in `language`.

    A citation is precise when its chunk is in the gold paragraph or holds a German gold answer.
    """
    golds = q.answers[language]
    prediction = "" if answer["abstained"] else strip_markers(answer["answer"])
    shown = [c for c in answer["citations"] if c["verified"]]
    precise = sum(c["doc_id"] == q.doc_id or any(g in chunk_text[c["chunk_id"]] for g in q.answers["de"])
                  for c in shown)
    return ScoredAnswer(language, q.id, answer["answer"], answer["abstained"], answer["support"],
                        best_over(exact_match, prediction, golds), best_over(token_f1, prediction, golds),
                        best_over(contains_answer, prediction, golds), len(answer["citations"]), len(shown), precise,
                        answer["timings"]["total"])


def summarize_answers(language: str, scored: list[ScoredAnswer]) -> AnswerRow:
    n = len(scored)
    cited = sum(s.cited for s in scored)
    verified = sum(s.verified for s in scored)
    return AnswerRow(language, n, sum(s.exact_match for s in scored) / n, sum(s.f1 for s in scored) / n,
                     sum(s.contains for s in scored) / n,
                     sum(s.precise for s in scored) / verified if verified else None,
                     verified / cited if cited else None, sum(s.abstained for s in scored) / n,
                     latency_summary([s.seconds for s in scored]))


def run_identity(answerer: QuestionAnswerer, chunker: ChunkerSettings, xquad: XQuAD) -> dict:
    """What a benchmark's figures depend on: models, settings, corpus (not the code: see README)."""
    corpus = json.dumps(xquad.paragraphs, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return {"rag": __version__, "models": answerer.models, "answer_settings": asdict(answerer.settings),
            "retrieval_settings": asdict(answerer.retriever.settings), "chunker": chunker.identity(),
            "corpus_sha256": sha256_bytes(corpus)}


def read_results(path: Path, identity: dict) -> dict[tuple[str, str], ScoredAnswer] | None:
    """Answers already scored in `path` by a run with the same identity, by (language, question id);
    None when the file holds nothing yet."""
    records = read_json_lines(path)
    if not records:
        return None
    header = records[0]
    if header.get("format") != RESULTS_FORMAT or header.get("version") != RESULTS_VERSION:
        raise RagError(f"{path} is not a results file of this benchmark (format {RESULTS_FORMAT} "
                       f"version {RESULTS_VERSION}); choose another file")
    recorded = header.get("identity", {})
    differing = sorted(key for key in identity.keys() | recorded.keys() if identity.get(key) != recorded.get(key))
    if differing:
        raise RagError(f"{path} holds answers of another setup (it differs in: {', '.join(differing)}); "
                       "choose another results file or remove it")
    try:
        scored = [ScoredAnswer(**record) for record in records[1:]]
    except TypeError as exc:
        raise RagError(f"{path} has a line that is not a scored answer ({exc})") from None
    return {(s.language, s.id): s for s in scored}


def answer_benchmark(xquad: XQuAD, answerer_for: Callable[[Store], QuestionAnswerer], embedder: Embedder,
                     chunker: ChunkerSettings = ChunkerSettings(), limit: int | None = 100,
                     languages: tuple[str, ...] = LANGUAGES, results: Path | None = None,
                     on_done: Callable[[XQuADQuestion, ScoredAnswer], None] | None = None) -> list[AnswerRow]:
    """Open-retrieval QA over all paragraphs: EM, F1, contains, citation precision, verified rate.

    With `results`, every answer is appended to that file as soon as it is scored, and a run that
    finds answers there from the same setup (models, settings, corpus) skips those questions: a
    long run can be stopped and continued.
    """
    index, _ = index_xquad(xquad, embedder, chunker)
    chunk_text = {c.chunk_id: c.text for c in index.iter_chunks()}
    answerer = answerer_for(index)
    questions = sample(xquad.questions, limit)
    identity = run_identity(answerer, chunker, xquad)
    done = read_results(results, identity) if results else {}
    sink = open_for_appending_lines(results) if results else None
    try:
        if done is None:
            sink.write(json.dumps({"format": RESULTS_FORMAT, "version": RESULTS_VERSION, "identity": identity},
                                  ensure_ascii=False) + "\n")
            done = {}
        rows = []
        for lang in languages:
            scored = []
            for q in questions:
                if (lang, q.id) not in done:
                    done[lang, q.id] = score_answer(answerer.ask(q.question[lang]).to_json(), q, lang, chunk_text)
                    if sink:
                        sink.write(json.dumps(asdict(done[lang, q.id]), ensure_ascii=False) + "\n")
                        sink.flush()
                scored.append(done[lang, q.id])
                if on_done:
                    on_done(q, scored[-1])
            rows.append(summarize_answers(lang, scored))
    finally:
        if sink:
            sink.close()
    return rows
