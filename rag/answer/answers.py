"""An answer as every face shows it (the CLI, the server, the page, the benches): `Answer` and its JSON."""

from __future__ import annotations

from dataclasses import dataclass, field

from rag.answer.citations import Citation, cited_days
from rag.answer.timeframe import TimeScope, day_text, no_match_text
from rag.models.generation import ModelUsage
from rag.search.retrieval import RetrievedChunk

ABSTENTION = {
    "en": "The sources do not answer this question.",
    "de": "Die Quellen beantworten diese Frage nicht.",
}


@dataclass
class Answer:
    question: str
    answer: str
    abstained: bool
    language: str
    citations: list[Citation]
    invented_citations: list[int]
    retrieved: list[RetrievedChunk]
    sources_in_prompt: int
    finish_reason: str
    timings: dict[str, float]
    models: dict[str, str]
    usage: ModelUsage = field(default_factory=ModelUsage)  # every model call of the question
    search_query: str | None = None  # the question as translated for lexical search
    support: float | None = None  # the support check's score of the quotes (None: not checked)
    withheld: list[str] = field(default_factory=list)  # chunk ids kept out of the prompt: they address the model
    # Numbers of the answer that its sources did not hold, which withdrew it.
    ungrounded_numbers: list[int | float] = field(default_factory=list)
    scope: TimeScope | None = None  # the reference date and the period searched
    # Nothing published in the period answered: the date of the nearest article that does, if any.
    nearest: str | None = None
    dates: dict[str, str | None] = field(default_factory=dict)  # the retrieved articles' dates, by id
    # About the state now, its quote gave a value from this later day (YYYY-MM-DD), which withdrew it.
    announced_later: str | None = None

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"

    @property
    def as_of(self) -> str | None:
        """The newest date among the articles its verified citations quote: what the answer is as of."""
        return max(cited_days(self.citations), default=None)

    @property
    def outside_period(self) -> bool:
        """Withdrawn because nothing published in the period searched answers."""
        return self.abstained and self.scope is not None and self.scope.period is not None

    @property
    def withdrawal_kind(self) -> str | None:
        """Why the answer was withdrawn, as one of a few words (a metric's label), None when it stands."""
        if not self.abstained:
            return None
        if self.outside_period:
            return "outside_period"
        if self.announced_later:
            return "announced_later"
        if self.ungrounded_numbers:
            return "ungrounded_numbers"
        return "unsupported" if self.support is None else "weak_support"

    def withdrawal_reason(self) -> str | None:
        """Why the answer was withdrawn, in one line (None when it stands): "withdrawn: 20 is not in
        the sources", "withdrawn: the sources support the model's answer too weakly (support 0.12)"."""
        if not self.abstained:
            return None
        if self.outside_period:
            text = no_match_text(self.scope.period, self.nearest, "en").rstrip(".")
            return f"withdrawn: {text[0].lower()}{text[1:]}"
        if self.announced_later:
            return (f"withdrawn: its source gives the value from {day_text(self.announced_later, 'en')}, "
                    f"after the reference date {day_text(self.scope.today.isoformat(), 'en')}")
        if self.ungrounded_numbers:
            numbers, verb = ", ".join(map(str, self.ungrounded_numbers)), "is" if len(self.ungrounded_numbers) == 1 else "are"
            return f"withdrawn: {numbers} {verb} not in the sources"
        if self.support is None:
            return "withdrawn: no sentence of the sources supports the model's answer"
        return f"withdrawn: the sources support the model's answer too weakly (support {self.support:.2f})"

    def to_json(self) -> dict:
        return {
            "question": self.question,
            "answer": self.answer,
            "abstained": self.abstained,
            "withdrawal": self.withdrawal_reason(),
            "as_of": self.as_of,
            "today": self.scope.today.isoformat() if self.scope else None,
            "period": None if self.scope is None or self.scope.period is None else {
                "since": self.scope.period.start.isoformat(), "until": self.scope.period.end.isoformat(),
                "from": "given" if self.scope.given else "question"},
            "nearest": self.nearest,
            "language": self.language,
            "truncated": self.truncated,
            "search_query": self.search_query,
            "support": None if self.support is None else round(self.support, 4),
            "citations": [c.to_dict() for c in self.citations],
            "invented_citations": self.invented_citations,
            "retrieved": [{"doc_id": r.chunk.doc_id, "chunk_id": r.chunk.chunk_id, "score": round(r.score, 6),
                           "rank": r.rank, "date": self.dates.get(r.chunk.doc_id)} for r in self.retrieved],
            "sources_in_prompt": self.sources_in_prompt,
            "withheld_sources": self.withheld,
            "ungrounded_numbers": self.ungrounded_numbers,
            "tokens": self.usage.to_json(),
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "models": self.models,
        }
