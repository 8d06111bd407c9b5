"""The request shapes of `rag serve`, with their limits (pydantic models: FastAPI checks them)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rag.answer.timeframe import TimeFrame

from rag.search.retrieval import MODES

MAX_QUESTION_CHARS = 2000
MAX_K = 50
MAX_HISTORY_TURNS = 20

Question = Field(min_length=1, max_length=MAX_QUESTION_CHARS)


class EarlierTurn(BaseModel):
    """A question asked before in the same conversation, and the answer it got."""

    model_config = ConfigDict(extra="forbid")
    question: str = Question
    answer: str = Field(max_length=4 * MAX_QUESTION_CHARS)


class TimeFields(BaseModel):
    """The reference date a question is read on (default: the server's today) and the period to
    search, replacing one the question names (`rag ask --today/--since/--until`)."""

    today: date | None = None
    since: date | None = None
    until: date | None = None

    @model_validator(mode="after")
    def since_before_until(self):
        self.frame()
        return self

    def frame(self) -> TimeFrame:
        return TimeFrame(self.today, self.since, self.until)


class AskRequest(TimeFields):
    model_config = ConfigDict(extra="forbid")
    question: str = Question
    # Earlier turns, oldest first: the question is then made standalone from them, as `rag chat` does.
    history: list[EarlierTurn] = Field(default_factory=list, max_length=MAX_HISTORY_TURNS)
    k: int | None = Field(None, ge=0, le=MAX_K)
    min_support: float | None = Field(None, ge=0.0, le=1.0)
    stream: bool = False


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Question
    k: int = Field(5, ge=1, le=MAX_K)
    mode: Literal[MODES] = "hybrid"  # type: ignore[valid-type]


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text or "" for part in self.content if part.type == "text")
        return self.content or ""


class ChatRequest(TimeFields):
    """OpenAI's request; sampling options (temperature, ...) are accepted and ignored: answers are greedy."""

    model_config = ConfigDict(extra="allow")
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    k: int | None = Field(None, ge=0, le=MAX_K)
    min_support: float | None = Field(None, ge=0.0, le=1.0)


MAX_ARTICLE_CHARS = 2_000_000


class DocumentRequest(BaseModel):
    """An article to add or replace: its text or its page's HTML (never fetched: no address is read)."""

    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(None, min_length=1, max_length=MAX_ARTICLE_CHARS)
    html: str | None = Field(None, min_length=1, max_length=MAX_ARTICLE_CHARS)
    url: str | None = Field(None, max_length=2000)
    title: str | None = Field(None, max_length=1000)
    date: str | None = Field(None, max_length=100)
    id: str | None = Field(None, min_length=1, max_length=200)
