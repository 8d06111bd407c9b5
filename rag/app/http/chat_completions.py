"""OpenAI's chat completions over the same answers: `POST /v1/chat/completions`.

The verified citations come in `message.citations` and as `url_citation` annotations; streamed,
the content is the checked answer, not the model's draft.
"""

from __future__ import annotations

import asyncio
import re
import time

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from rag.answer.answers import Answer
from rag.app.chat import conversation_from_messages
from rag.app.http.errors import ApiError
from rag.app.http.jobs import (
    ServerState,
    ask_work,
    emitter,
    follow,
    require_key,
    require_ready,
    result_of,
    server_state,
    sse,
    sse_response,
    submit,
)
from rag.app.http.schemas import MAX_QUESTION_CHARS, ChatRequest
from rag.text.markers import MARKER

router = APIRouter(prefix="/v1", dependencies=[Depends(require_key)])


def citation_annotations(content: str, answer: Answer) -> list[dict]:
    """The verified citations as OpenAI `url_citation` annotations over the answer text.

    A citation's span is the text it backs: up to and including its "[n]" marker from the end of
    the previous marker, or the whole answer when the answer carries no marker for it.

    >>> from rag.answer.citations import Citation
    >>> c = Citation(1, "doc", "doc#0", 10, 20, "mehr als 20", True)
    >>> a = Answer("q", "more than 20", False, "en", [c], [], [], 1, "stop", {}, {})
    >>> citation_annotations(a.answer, a)[0]["url_citation"]["url"]
    'rag://doc/doc#char=10,20'
    """
    annotations = []
    markers = {int(n): m for m in MARKER.finditer(content) for n in re.split(r"\s*[,;]\s*", m.group(1))}
    previous_ends = sorted(m.end() for m in MARKER.finditer(content))
    for citation in answer.citations:
        if not citation.verified:
            continue
        marker = markers.get(citation.number)
        if marker is None:
            start, end = 0, len(content)
        else:
            start = max([e for e in previous_ends if e <= marker.start()], default=0)
            end = marker.end()
            start += len(content[start:end]) - len(content[start:end].lstrip())
        annotations.append({"type": "url_citation", "url_citation": {
            "start_index": start, "end_index": end,
            # The publisher's page at the quote where the article came from the web; else the quote in the index.
            "url": citation.source_link or f"rag://doc/{citation.doc_id}#char={citation.start},{citation.end}",
            "title": (citation.title or citation.doc_id) + (f" ({citation.date})" if citation.date else "")}})
    return annotations


def usage(answer: Answer) -> dict:
    """OpenAI's usage over every model call of the answer; prompt tokens read from a saved state
    count as cached, as OpenAI counts them."""
    work = answer.usage
    prompt = work.prompt + work.cached
    return {"prompt_tokens": prompt, "completion_tokens": work.completion, "total_tokens": prompt + work.completion,
            "prompt_tokens_details": {"cached_tokens": work.cached}}


def finish_reason(answer: Answer) -> str:
    return "length" if answer.truncated else "stop"


def completion(answer: Answer, searched: str, completion_id: str, created: int, model: str) -> dict:
    """The `chat.completion` object of a finished answer."""
    message = {"role": "assistant", "content": answer.answer,
               "citations": [c.to_dict() for c in answer.citations if c.verified],
               "annotations": citation_annotations(answer.answer, answer)}
    return {"id": completion_id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(answer)}],
            "usage": usage(answer),
            "rag": {"abstained": answer.abstained, "support": answer.to_json()["support"], "searched": searched}}


def conversation(body: ChatRequest) -> tuple[list, str]:
    """The history and the question of OpenAI's messages, or 422."""
    try:
        history, question = conversation_from_messages([{"role": m.role, "content": m.text()} for m in body.messages])
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None
    if not question.strip() or len(question) > MAX_QUESTION_CHARS:
        raise ApiError(422, f"the question must be 1 to {MAX_QUESTION_CHARS} characters")
    return history, question


@router.post("/chat/completions", dependencies=[Depends(require_ready)])
async def chat_completions(body: ChatRequest, request: Request, state: ServerState = Depends(server_state)):
    history, question = conversation(body)
    identity = (f"chatcmpl-{request.state.request_id}", int(time.time()), state.service.generator.model_id)
    if not body.stream:
        job = submit(state, ask_work(state.service, question, body.k, body.min_support, history=history,
                                    frame=body.frame()))
        answer, searched = await result_of(request, job)
        return JSONResponse(completion(answer, searched, *identity),
                            headers={"X-Queue-Seconds": f"{job.queue_seconds:.3f}"})
    events: asyncio.Queue = asyncio.Queue()
    job = submit(state, ask_work(state.service, question, body.k, body.min_support, emitter(events), history,
                                body.frame()))
    return sse_response(completion_chunks(request, job, events, identity))


async def completion_chunks(request: Request, job, events: asyncio.Queue, identity: tuple[str, int, str]):
    """The streamed `chat.completion.chunk`s. The content is the checked answer, not the model's
    draft: a client joins the deltas into the message, and a draft that the check withdraws could
    not be taken back."""
    completion_id, created, model = identity

    def chunk(delta: dict, finish: str | None = None, **extra) -> str:
        return sse({"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra})

    yield chunk({"role": "assistant", "content": ""})
    async for event, data in follow(request, job, events):
        if event == "result":
            answer, searched = data
            full = completion(answer, searched, *identity)
            for piece in re.findall(r"\s*\S+", answer.answer):
                yield chunk({"content": piece})
            message = full["choices"][0]["message"]
            yield chunk({"citations": message["citations"], "annotations": message["annotations"]})
            yield chunk({}, finish_reason(answer), usage=full["usage"], rag=full["rag"])
            yield sse("[DONE]")
        elif event == "error":
            yield sse(data)
