"""Benchmarks on XQuAD (German paragraphs, the same questions in German and English).

Each paragraph becomes one document, indexed exactly as `rag index` does it; every question is
asked in both languages. Retrieval: recall@1/3/5 and MRR of the gold paragraph per question
language and retrieval variant, query latency, index build time.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .answering import QuestionAnswerer
from .chunking import ChunkerSettings
from .embedding import Embedder
from .errors import RagError
from .citations import strip_markers
from .evaluation import (best_over, contains_answer, exact_match, latency_summary, recall_at_k, reciprocal_rank,
                         token_f1)
from .index import Index, build_index, open_index
from .retrieval import RetrievalSettings, Retriever

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


def index_xquad(xquad: XQuAD, embedder: Embedder, chunker: ChunkerSettings) -> tuple[Index, float]:
    """The paragraphs indexed afresh as `rag index` does it, and the seconds the build took."""
    with tempfile.TemporaryDirectory() as tmp:
        corpus = write_corpus(xquad, Path(tmp) / "docs")
        started = time.perf_counter()
        build_index([corpus], Path(tmp) / "index", embedder, chunker)
        build_seconds = time.perf_counter() - started
        return open_index(Path(tmp) / "index", embedder.model_id), build_seconds


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
                        on_progress: Callable[[str], None] | None = None) -> RetrievalReport:
    """Index the paragraphs afresh (timed), then run every variant over every question and language."""
    questions = sample(xquad.questions, limit)
    index, build_seconds = index_xquad(xquad, embedder, chunker)
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
    return RetrievalReport(rows, build_seconds, len(index.chunks), len(index.documents), translation_seconds)


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


def answer_benchmark(xquad: XQuAD, answerer_for: Callable[[Index], QuestionAnswerer], embedder: Embedder,
                     chunker: ChunkerSettings = ChunkerSettings(), limit: int | None = 100,
                     languages: tuple[str, ...] = LANGUAGES,
                     on_done: Callable[[str, XQuADQuestion, dict], None] | None = None) -> list[AnswerRow]:
    """Open-retrieval QA over all paragraphs: EM, F1, contains, citation precision, verified rate."""
    index, _ = index_xquad(xquad, embedder, chunker)
    chunk_text = {c.chunk_id: c.text for c in index.chunks}
    answerer = answerer_for(index)
    questions = sample(xquad.questions, limit)
    rows = []
    for lang in languages:
        em = f1 = contains = abstained = 0.0
        precise = cited = verified = 0
        seconds = []
        for q in questions:
            answer = answerer.ask(q.question[lang]).to_json()
            golds = q.answers[lang]
            prediction = "" if answer["abstained"] else strip_markers(answer["answer"])
            em += best_over(exact_match, prediction, golds)
            f1 += best_over(token_f1, prediction, golds)
            contains += best_over(contains_answer, prediction, golds)
            abstained += answer["abstained"]
            seconds.append(answer["timings"]["total"])
            shown = [c for c in answer["citations"] if c["verified"]]
            cited += len(answer["citations"])
            verified += len(shown)
            precise += sum(c["doc_id"] == q.doc_id or any(g in chunk_text[c["chunk_id"]] for g in q.answers["de"])
                           for c in shown)
            if on_done:
                on_done(lang, q, answer)
        n = len(questions)
        rows.append(AnswerRow(lang, n, em / n, f1 / n, contains / n, precise / verified if verified else None,
                              verified / cited if cited else None, abstained / n, latency_summary(seconds)))
    return rows
