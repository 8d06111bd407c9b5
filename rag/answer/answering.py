"""Answering: retrieve, prompt the model with numbered sources, stream, then check citations.

The prompt is the main cost (about 10 ms per token on this CPU), so it carries only what the
model needs: short instructions, the sources in rank order until the context budget is spent,
the question, and the language to answer in. Source text is data: it is delimited, and
chat-template control strings are removed from it before it reaches the model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import date
from typing import Callable

import numpy as np

from rag.answer.answers import ABSTENTION, Answer
from rag.answer.citations import CitationResult, cited_days, resolve_citations
from rag.answer.currency import announced_later, newer_articles, quoted_paragraphs, without_later_dates
from rag.answer.prompts import (
    addresses_the_model,
    build_messages,
    shorten_messages,
    support_messages,
    translate_answer_messages,
)
from rag.answer.shaping import (
    copied_words,
    count_alone,
    direct_part,
    markers_of,
    quoted_words,
    within_source_words,
    without_restated_question,
)
from rag.answer.timeframe import (TimeFrame, TimeScope, known_by_then, nearest_day, no_match_text, read_scope,
                                  with_as_of, without_period)
from rag.models.generation import Generation, Generator, metered, model_call
from rag.search.retrieval import RetrievalResult, RetrievedChunk, Retriever
from rag.store.base import Store
from rag.text.chunking import Chunk, split_sentences
from rag.text.language import detect_language
from rag.text.lexical import analyze
from rag.text.markers import strip_markers
from rag.text.numbers import restore_qualifiers, spell_as_sources_do, ungrounded_numbers

@dataclass(frozen=True)
class AnswerSettings:
    k: int = 5  # chunks retrieved (and reported)
    prompt_sources: int = 3  # of those, at most this many go into the prompt: each costs ~2 s here
    max_answer_tokens: int = 120
    prompt_margin_tokens: int = 32  # chat-template tokens around the messages
    # Below this support the answer is withdrawn. Seed evaluation set, 1.5B model: unanswerable
    # questions 0.05-0.34, correctly answered ones 0.33-0.99 (most above 0.6).
    min_support: float = 0.35
    # Answers longer than this many words are cut to the part that answers (0: never).
    shorten_after_words: int = 8
    # A withdrawn answer is asked again over only this many sentences of the sources, those
    # nearest the question (0: no second attempt). Whole chunks distract this model: with "im
    # Dezember", "im Frühling" and "im nächsten Jahr" in view it answered the season with "2".
    focus_sentences: int = 2
    # Greedy decoding takes the likeliest first token, but the likeliest reply may begin with
    # another ("1998" over "1. März 1998."): up to this many other likely first tokens are followed
    # greedily too, and a reply the model finds more probable than the greedy one, saying something
    # else and supported, is the answer (0: greedy only).
    alternative_replies: int = 3
    # An answer about the state now is asked again over each retrieved article published after
    # the newest it cites, newest first, up to this many: the first that answers is the answer.
    newer_articles: int = 2

    def __post_init__(self):
        if self.k < 0 or self.prompt_sources < 1 or self.max_answer_tokens < 16 or self.shorten_after_words < 0 \
                or self.focus_sentences < 0 or self.alternative_replies < 0 or self.newer_articles < 0:
            raise ValueError("k must be >= 0, prompt_sources >= 1, max_answer_tokens >= 16, shorten_after_words >= 0, "
                             "focus_sentences >= 0, alternative_replies >= 0 and newer_articles >= 0")
        if not 0.0 <= self.min_support <= 1.0:
            raise ValueError("min_support must be between 0 and 1")


class QuestionAnswerer:
    """Answers questions over one index with one retriever and one generator, loaded once."""

    def __init__(self, index: Store, retriever: Retriever, generator: Generator,
                 settings: AnswerSettings = AnswerSettings(), models: dict | None = None,
                 translate: Callable[[str, str], str] | None = None, frame: TimeFrame = TimeFrame()):
        self.index = index
        self.frame = frame  # the reference date and period of every question, unless `ask` is given others
        self.retriever = retriever
        self.generator = generator
        self.settings = settings
        self.models = models or {}
        self.translate = translate  # (text, language) -> text in that language, for the support check

    def warm_up(self) -> dict[str, float]:
        """Load both models now; returns the seconds each took (0 when already loaded)."""
        seconds = {}
        for name, model in (("load_embedder", self.retriever.embedder), ("load_generator", self.generator)):
            started = time.perf_counter()
            model.load()
            seconds[name] = time.perf_counter() - started
        return seconds

    def fit_sources(self, question: str, retrieved: list[RetrievedChunk], language: str) -> list[Chunk]:
        """The retrieved chunks that fit the context, dropping the lowest-ranked first."""
        budget = self.generator.context_length - self.settings.max_answer_tokens - self.settings.prompt_margin_tokens
        sources = [r.chunk for r in retrieved[:self.settings.prompt_sources]]
        while sources:
            messages = build_messages(question, sources, self.index.documents, language)
            if sum(self.generator.count_tokens(m["content"]) for m in messages) <= budget:
                break
            sources.pop()
        return sources

    def shorten(self, question: str, answer: str, timings: dict[str, float]) -> str:
        """A long answer cut to the words that answer, when the model finds them in it."""
        limit = self.settings.shorten_after_words
        if not limit or len(strip_markers(answer).split()) <= limit:
            return answer
        started = time.perf_counter()
        with model_call("shortening"):
            reply = self.generator.generate(shorten_messages(question, strip_markers(answer)), max_tokens=24).text
        timings["shortening"] = time.perf_counter() - started
        return direct_part(answer, reply, question) or answer

    def in_question_language(self, question: str, answer: str, quotes: list[str], language: str,
                             timings: dict[str, float]) -> str:
        """An answer that copies words of the sources into another language, translated into the question's.

        The model often answers an English question with the German words of the source
        ("Geschenk", "Kulturimperialismus"); names come through the translation unchanged. Words
        quoted in the source stay as said (translated, "lieben Freund" became "To love a friend").
        A reply that is no short translation (empty, several lines, far longer) is not used.
        """
        copied = copied_words(answer, quotes, question)
        if language == self.index.manifest.language or not copied or copied <= quoted_words(quotes):
            return answer
        bare = strip_markers(answer)
        started = time.perf_counter()
        with model_call("answer_translation"):
            reply = strip_markers(self.generator.generate(translate_answer_messages(bare, language), max_tokens=48).text)
        timings["answer_translation"] = time.perf_counter() - started
        if not reply or "\n" in reply or len(reply.split()) > 2 * len(bare.split()) + 3:
            return answer
        if not bare.endswith("."):
            reply = reply.rstrip(".")
        return f"{reply} {markers_of(answer)}".strip()

    def focus(self, question: str, sources: list[Chunk]) -> list[Chunk]:
        """The `focus_sentences` sentences of `sources` nearest the question, each a source of its own.

        Ranked by the retriever's embedder, listed in the sources' order; a sentence keeps its
        chunk id and gets its own document offsets, so a citation of it quotes exactly it.
        """
        sentences = [replace(chunk, start=span.start, end=span.end, text=span.text) for chunk in sources
                     for span in split_sentences(self.index.documents[chunk.doc_id].text, chunk.start, chunk.end)]
        if not sentences:
            return []
        nearness = self.nearness([s.text for s in sentences], question)
        chosen = np.argsort(-np.asarray(nearness), kind="stable")[:self.settings.focus_sentences]
        return [sentences[i] for i in sorted(chosen)]

    def support(self, question: str, quotes: list[str], language: str) -> float:
        """How surely the quotes answer the question, in [0, 1] (the model's leaning to "yes").

        This model judges a question against sentences in another language poorly: it took
        "26 Staats- und Regierungschefs an der Parade" as the number of soldiers who marched
        (0.40) but not once the question was German too (0.20). So a question in another language
        than the corpus is judged twice, as asked and translated, and the two leanings averaged.
        """
        with model_call("support"):
            leaning = self.generator.yes_probability(support_messages(question, quotes))
        corpus_language = self.index.manifest.language
        if self.translate is None or language == corpus_language:
            return leaning
        translated = self.translate(question, corpus_language)
        with model_call("support_translated"):
            return (leaning + self.generator.yes_probability(support_messages(translated, quotes))) / 2

    def nearness(self, texts: list[str], text: str) -> list[float]:
        """Scores of `texts` against `text` by the retriever's (multilingual) embedder."""
        embedder = self.retriever.embedder
        return [float(x) for x in embedder.embed(texts) @ embedder.embed_query([text])[0]]

    def attempt(self, question: str, sources: list[Chunk], language: str, timings: dict[str, float],
                on_token: Callable[[str], None] | None = None, alternatives: int = 0,
                purpose: str = "answer", on_stage: Callable[[str], None] | None = None,
                judged: str | None = None) -> Attempt:
        """One answer from `sources`: generated (with `alternatives` replies), then checked
        (`on_stage("checking")` between the two); `judged`: the question its support is judged
        against (default: `question`)."""
        with model_call(purpose):
            generation = self.generator.generate(build_messages(question, sources, self.index.documents, language),
                                                 self.settings.max_answer_tokens, on_token, alternatives)
        if on_stage:
            on_stage("checking")
        timings["prompt_processing"] = generation.prompt_seconds
        timings["generation"] = generation.generation_seconds
        return self.check(question, sources, generation, language, timings, judged)

    def check(self, question: str, sources: list[Chunk], generation: Generation, language: str,
              timings: dict[str, float], judged: str | None = None) -> Attempt:
        """A reply from `sources` with its citations resolved, its quotes and numbers checked, its support judged."""
        t = time.perf_counter()
        # An answer in another language than the sources may share no word with them ("Brazil").
        by_meaning = language != self.index.manifest.language
        resolved = (resolve_citations(generation.text, sources, self.index.documents, question, self.nearness,
                                      by_meaning) if sources and generation.text.strip() else None)
        verified = [c for c in resolved.citations if c.verified] if resolved else []
        quotes = [c.quote for c in verified]
        timings["citations"] = time.perf_counter() - t
        # A number the sources do not hold makes the answer unsupported, whatever the quotes say.
        # The sources' dates were in the prompt too ("2024-09-03": 2024, 9, 3).
        dates = [c.date.replace("-", " ") for c in verified if c.date]
        ungrounded = ungrounded_numbers(generation.text, quotes + dates, question) if quotes else set()
        support = None
        if quotes and not ungrounded:
            t = time.perf_counter()
            support = self.support(judged or question, quotes, language)
            timings["support_check"] = time.perf_counter() - t
        return Attempt(sources, generation, resolved, quotes, support,
                       support is not None and support >= self.settings.min_support, sorted(ungrounded))

    def likeliest(self, question: str, greedy: Attempt, language: str, timings: dict[str, float],
                  judged: str | None = None) -> Attempt:
        """The attempt's most probable reply when that is not the greedy one, says something else
        and is supported; else the greedy attempt.

        A reply of the same words ("P and PSPACE" for "In P and PSPACE") is no other answer: the
        greedy one stays, as streamed.
        """
        generation = greedy.generation
        best = max(generation.alternatives, key=lambda g: g.probability or 0.0, default=None)
        if best is None or generation.probability is None or (best.probability or 0.0) <= generation.probability \
                or analyze(strip_markers(best.text)) == answer_words(greedy):
            return greedy
        t = time.perf_counter()
        other = self.check(question, greedy.sources, best, language, {}, judged)
        timings["likelier_reply_check"] = time.perf_counter() - t
        return other if other.supported else greedy

    def final_text(self, question: str, answer: Attempt, language: str, timings: dict[str, float]) -> str:
        """A supported attempt's answer cut to the fact, in the question's language, worded as its quotes."""
        text = self.shorten(question, answer.resolved.text, timings)
        text = self.in_question_language(question, text, answer.quotes, language, timings)
        # Last, so that it sees the answer in the question's language, and after the model's cut,
        # which finds the answer inside a sentence better than trimming its ends does.
        text = without_restated_question(text, question) or text
        # An answer in its sources' language is made of their words; one in another language
        # is a translation and holds none.
        if language == self.index.manifest.language:
            cited = [answer.sources[c.number - 1].text for c in answer.resolved.citations if c.verified]
            text = within_source_words(text, cited) or text
        text = count_alone(text, question) or text
        return spell_as_sources_do(restore_qualifiers(text, answer.quotes, language), answer.quotes, language)

    def ask(self, question: str, k: int | None = None, on_token: Callable[[str], None] | None = None,
            on_retrieval: Callable[[RetrievalResult], None] | None = None,
            on_stage: Callable[[str], None] | None = None, today: date | None = None,
            since: date | None = None, until: date | None = None) -> Answer:
        """Answer `question`; `on_retrieval` sees what was retrieved before the model starts, `on_token`
        each piece of the draft the model writes (the answer is that draft once checked and shaped),
        `on_stage("checking")` when the draft is written and its quotes are being checked. The
        question is read on `today` (the reference date, today's by default); `since`/`until`
        replace the period it names (timeframe.read_scope).
        The whole answer reads one generation of the index, even while `rag index` changes it."""
        question = question.strip()
        if not question:
            raise ValueError("the question is empty")
        frame = self.frame
        scope = read_scope(question, today or frame.today or date.today(), since or frame.since, until or frame.until)
        with self.index.snapshot(), metered() as usage:
            answer = self._ask(question, k, scope, on_token, on_retrieval, on_stage)
        answer.usage = usage
        return answer

    def _ask(self, question: str, k: int | None, scope: TimeScope, on_token: Callable[[str], None] | None,
             on_retrieval: Callable[[RetrievalResult], None] | None, on_stage: Callable[[str], None] | None) -> Answer:
        language = detect_language(question)
        timings: dict[str, float] = {}
        started = time.perf_counter()
        k = self.settings.k if k is None else k
        result = self.retriever.search(question, k=k, period=scope.period)
        if on_retrieval:
            on_retrieval(result)
        timings["translation"] = result.seconds.get("translation", 0.0)
        timings["retrieval"] = time.perf_counter() - started - timings["translation"]
        t = time.perf_counter()
        withheld = [r.chunk.chunk_id for r in result.chunks if addresses_the_model(r.chunk.text)]
        dates = self.dates(result.chunks)
        retrieved = known_by_then([r for r in result.chunks if r.chunk.chunk_id not in withheld], dates, scope)
        sources = self.fit_sources(question, retrieved, language)
        # The search kept to the period: the quotes are judged on what is asked, not on the period's
        # words, which a sentence seldom repeats ("1,58 Euro" under "Dieselpreis sinkt im August").
        judged = without_period(question, scope.period)
        timings["prompt_building"] = time.perf_counter() - t
        if scope.period and not sources:  # nothing published in the period: no answer to draft
            answer = None
        else:
            answer = self.answer_from(question, sources, language, timings, on_token, on_stage, judged)
        later = None
        if scope.current and answer.supported:
            answer, later = self.current_state(question, answer, retrieved, dates, scope.today, language, timings,
                                               judged)
        nearest = None
        if scope.period and not (answer and answer.supported):
            answer, nearest = self.outside(question, scope, k, language, timings, judged)
        if answer.supported and not nearest:
            text = self.final_text(question, answer, language, timings)
            citations, invented = answer.resolved.citations, answer.resolved.invented
            if scope.current:
                text = with_as_of(text, max(cited_days(citations), default=None), language)
        elif scope.period:
            text, citations, invented = no_match_text(scope.period, nearest, language), [], []
        else:
            text, citations, invented = ABSTENTION[language], [], []
        timings["total"] = time.perf_counter() - started
        return Answer(question, text, not citations, language, citations, invented, result.chunks,
                      len(answer.sources), answer.generation.finish_reason, timings, self.models,
                      search_query=result.lexical_query, support=answer.support, withheld=withheld,
                      ungrounded_numbers=answer.ungrounded_numbers, scope=scope, nearest=nearest, dates=dates,
                      announced_later=later)

    def answer_from(self, question: str, sources: list[Chunk], language: str, timings: dict[str, float],
                    on_token: Callable[[str], None] | None = None,
                    on_stage: Callable[[str], None] | None = None, judged: str | None = None) -> Attempt:
        """The answer's attempts over `sources`: the streamed one (or a likelier reply), then, when
        that is withdrawn, one over the sentences nearest the question."""
        answer = self.likeliest(question, self.attempt(question, sources, language, timings, on_token,
                                                       self.settings.alternative_replies, on_stage=on_stage,
                                                       judged=judged),
                                language, timings, judged)
        if not answer.supported and self.settings.focus_sentences and sources:
            t = time.perf_counter()
            # Not streamed: the caller shows the checked answer when it differs from what streamed.
            focused = self.attempt(question, self.focus(question, sources), language, {}, purpose="focused_answer",
                                   judged=judged)
            timings["focused_attempt"] = time.perf_counter() - t
            # The same answer again is the answer already withdrawn, not a second opinion.
            if focused.supported and answer_words(focused) != answer_words(answer):
                answer = focused
        return answer

    def current_state(self, question: str, answer: Attempt, retrieved: list[RetrievedChunk],
                      dates: dict[str, str | None], today: date, language: str, timings: dict[str, float],
                      judged: str | None = None) -> tuple[Attempt, str | None]:
        """A supported answer about the state now, checked against time (currency.py): a newer
        retrieved article that answers takes precedence; an answer whose quote's paragraph names a
        day after `today` (the value may hold only from then) is asked again without the sentences
        naming later days, over the articles it cites first, then over all its sources: the same
        answer from a paragraph naming none stands (the later day was about something else: "Kosten
        steigen auf 74 Millionen Euro, Fertigstellung erst 2028"), another one supported too (and
        then the newer articles without their later days), else it is withdrawn (returned with that
        day). Its own articles first: over all sources, an older article's superseded value was the
        answer ("48 million euros" of January for the cost October's headline gave, temporal set)."""
        t = time.perf_counter()
        answer = self.newest(question, answer, retrieved, dates, language, judged)
        later = announced_later(question, self.quoted_paragraphs(answer), today)
        cited = {c.doc_id for c in answer.resolved.citations if c.verified}
        own = [chunk for chunk in answer.sources if chunk.doc_id in cited]
        tries = [own, answer.sources] if len(own) < len(answer.sources) else [answer.sources]
        for given in tries if later else []:
            sources = without_later_dates(given, self.index.documents, today)
            again = self.attempt(question, sources, language, {}, purpose="without_later_dates", judged=judged) \
                if sources else None
            now = again and again.quotes and not announced_later(question, self.quoted_paragraphs(again), today)
            if now and answer_words(again) == answer_words(answer):
                later = None  # the same value stands in a paragraph naming no later day
                break
            if now and again.supported:
                answer, later = self.newest(question, again, retrieved, dates, language, judged, today), None
                break
        if later:
            answer = replace(answer, supported=False)
        timings["current_state"] = time.perf_counter() - t
        return answer, later

    def newest(self, question: str, answer: Attempt, retrieved: list[RetrievedChunk], dates: dict[str, str | None],
               language: str, judged: str | None = None, without_later_than: date | None = None) -> Attempt:
        """The answer from the newest retrieved article published after those `answer` cites that
        answers too, tried newest first (up to `newer_articles`); else `answer`.
        `without_later_than`: the articles without their sentences naming a day after it.

        Its numbers must stand in its quotes, not only in its date: asked when the bridge will be
        done, the mayor's swearing-in article, which mentions the bridge, was answered with its own
        date, "2025-11-03" (temporal set, docs/answering.md)."""
        as_of = max(cited_days(answer.resolved.citations), default=None)
        for chunks in newer_articles(retrieved, dates, as_of)[:self.settings.newer_articles] if as_of else []:
            sources = self.fit_sources(question, chunks, language)
            if without_later_than:
                sources = without_later_dates(sources, self.index.documents, without_later_than)
            newer = self.attempt(question, sources, language, {}, purpose="newer_evidence", judged=judged) \
                if sources else None
            if newer and newer.supported and not ungrounded_numbers(newer.generation.text, newer.quotes, question):
                return newer
        return answer

    def outside(self, question: str, scope: TimeScope, k: int, language: str,
                timings: dict[str, float], judged: str | None = None) -> tuple[Attempt, str | None]:
        """Nothing published in the period answered: one answer over the whole index finds the
        nearest dated evidence. Its answer stands only if it cites an article of the period (the
        first try's sources were others); else the date of the nearest article it cites."""
        t = time.perf_counter()
        found = [r for r in self.retriever.search(question, k=k).chunks if not addresses_the_model(r.chunk.text)]
        sources = self.fit_sources(question, found, language)
        attempt = self.attempt(question, sources, language, {}, purpose="nearest_evidence", judged=judged)
        timings["nearest_evidence"] = time.perf_counter() - t
        days = cited_days(attempt.resolved.citations) if attempt.supported and attempt.resolved else []
        if any(date.fromisoformat(day) in scope.period for day in days):
            return attempt, None
        return attempt, nearest_day(days, scope.period)

    def quoted_paragraphs(self, attempt: Attempt) -> list[tuple[str, str | None]]:
        return quoted_paragraphs(attempt.resolved.citations, self.index.documents) if attempt.resolved else []

    def dates(self, retrieved: list[RetrievedChunk]) -> dict[str, str | None]:
        return {doc_id: self.index.documents[doc_id].date for doc_id in {r.chunk.doc_id for r in retrieved}}


def answer_words(attempt: Attempt) -> list[str]:
    return analyze(strip_markers(attempt.generation.text))


@dataclass(frozen=True)
class Attempt:
    """One generated answer and what checking it found."""

    sources: list[Chunk]
    generation: Generation
    resolved: CitationResult | None
    quotes: list[str]  # the verified citations' quotes
    support: float | None  # the support check's score of the quotes (None: not checked)
    supported: bool  # support at least the answerer's min_support
    ungrounded_numbers: list[int | float]  # numbers of the answer that its quotes and the question lack
