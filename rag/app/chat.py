"""Chat: a conversation over one index, with follow-up questions made standalone before retrieval.

"To which city did Putin invite Xi?" then "And in which season?": the second question alone
retrieves nothing useful, so the local model first rewrites it from the recent turns
("In which season did Putin invite Xi to Moscow?"). The session keeps the last answer for
/sources. Terminal input and output live in the CLI; this module holds the logic.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Callable

from rag.answer.answering import QuestionAnswerer
from rag.answer.answers import Answer
from rag.answer.timeframe import TimeFrame
from rag.models.generation import metered, model_call
from rag.search.retrieval import RetrievalResult
from rag.text.language import LANGUAGE_NAMES, detect_language

REWRITE_SYSTEM = (
    "Rewrite the user's last question so that it can be understood without the conversation: "
    "replace pronouns and fill in what is left out from the earlier turns. Keep the language of the "
    "question. Reply with the rewritten question only."
)
HELP = """Commands:
  /sources   the quotes behind the last answer, with their offsets
  /reset     forget the conversation
  /k N       retrieve N chunks per question
  /help      this text
  /quit      leave (Ctrl-D works too)
Ctrl-C stops an answer being written."""


@dataclass
class Turn:
    question: str
    answer: str


def conversation_from_messages(messages: list[dict]) -> tuple[list[Turn], str]:
    """An OpenAI-style message list as (earlier turns, last question): each user message followed by
    an assistant reply is a turn; system messages are ours to write and are passed over.

    >>> conversation_from_messages([{"role": "system", "content": "Be brief."},
    ...     {"role": "user", "content": "Wohin lud Putin Xi ein?"}, {"role": "assistant", "content": "Moskau"},
    ...     {"role": "user", "content": "Und wann?"}])
    ([Turn(question='Wohin lud Putin Xi ein?', answer='Moskau')], 'Und wann?')
    """
    spoken = [m for m in messages if m["role"] in ("user", "assistant")]
    if not spoken or spoken[-1]["role"] != "user":
        raise ValueError("the last message must be the user's question")
    turns = [Turn(q["content"], a["content"]) for q, a in zip(spoken, spoken[1:])
             if q["role"] == "user" and a["role"] == "assistant"]
    return turns, spoken[-1]["content"]


@dataclass
class ChatSession:
    answerer: QuestionAnswerer
    max_turns: int = 3  # turns of history the rewriter sees
    history: list[Turn] = field(default_factory=list)
    last: Answer | None = None
    k: int | None = None
    standalone_question: str | None = None  # what the last question was searched as
    frame: TimeFrame = field(default_factory=TimeFrame)  # the reference date and period of its questions

    def standalone(self, question: str) -> str:
        """The question rewritten from the recent turns; unchanged when there is no history, or
        when the rewrite came back in another language (the answer follows the question's language)."""
        if not self.history:
            return question
        language = detect_language(question)
        turns = "\n".join(f"Q: {t.question}\nA: {t.answer}" for t in self.history[-self.max_turns:])
        messages = [{"role": "system", "content": REWRITE_SYSTEM},
                    {"role": "user", "content": f"Conversation:\n{turns}\n\nLast question: {question}\n"
                                                f"Write the rewritten question in {LANGUAGE_NAMES[language]}."}]
        with model_call("follow_up_rewrite"):
            rewritten = self.answerer.generator.generate(messages, max_tokens=60).text
        rewritten = re.sub(r"\s+", " ", rewritten).strip().strip('"')
        rewritten = re.sub(r"^(rewritten question|question|frage)\s*:\s*", "", rewritten, flags=re.I)
        if not rewritten or detect_language(rewritten) != language:
            return question
        return rewritten

    def ask(self, question: str, on_token: Callable[[str], None] | None = None,
            on_rewrite: Callable[[str], None] | None = None,
            on_retrieval: Callable[[RetrievalResult], None] | None = None,
            on_stage: Callable[[str], None] | None = None) -> Answer:
        with metered():  # the answer's usage counts the rewrite too
            started = time.perf_counter()
            searched = self.standalone_question = self.standalone(question)
            rewrite_seconds = time.perf_counter() - started
            if searched != question and on_rewrite:
                on_rewrite(searched)
            answer = self.answerer.ask(searched, k=self.k, on_token=on_token, on_retrieval=on_retrieval,
                                       on_stage=on_stage, today=self.frame.today, since=self.frame.since,
                                       until=self.frame.until)
        if self.history:  # a follow-up: its rewrite is a stage of the answer
            answer.timings["rewrite"] = rewrite_seconds
        if self.answerer.generator.stop_requested:  # a stopped answer is no part of the conversation
            return answer
        self.history.append(Turn(question, answer.answer))
        self.last = answer
        return answer

    def reset(self) -> None:
        self.history.clear()
        self.last = None

    def sources_text(self) -> str:
        if self.last is None:
            return "No answer yet."
        shown = [c for c in self.last.citations if c.verified]
        if not shown:
            return "The last answer has no verified sources."
        return "\n\n".join(f"[{c.number}] {c.doc_id}" + (f" ({c.date})" if c.date else "") +
                           f", characters {c.start}-{c.end}:\n{c.quote}" for c in shown)

    def command(self, line: str) -> str | None:
        """Run a /command; returns the text to show, or None for /quit."""
        name, _, arg = line.strip().partition(" ")
        if name in ("/quit", "/exit"):
            return None
        if name == "/reset":
            self.reset()
            return "Conversation forgotten."
        if name == "/sources":
            return self.sources_text()
        if name == "/k":
            if not arg.strip().isdigit() or int(arg) < 1:
                return "Usage: /k N (a whole number of at least 1)"
            self.k = int(arg)
            return f"Retrieving {self.k} chunks per question."
        if name == "/help":
            return HELP
        return f"Unknown command {name}. " + HELP
