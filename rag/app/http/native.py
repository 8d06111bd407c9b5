"""The native routes: health, status, models, search, documents and ask (`rag ask --json` over HTTP).

    GET  /health                 200 {"status": "ok"} once loaded, 503 while loading or stopping; no key
    GET  /metrics                Prometheus' text format (app/http/metrics.py); the key, when one is set
    GET  /v1/status              models, index, queue
    GET  /v1/models              OpenAI's list shape
    POST /v1/search              retrieval only, no model call
    GET  /v1/documents/{doc_id}  a document's text, so a client can check a quote at its offsets
    POST /v1/ask                 the `rag ask --json` object; `stream: true` sends named SSE events:
                                 rewrite (a follow-up made standalone), retrieval, token (the draft),
                                 stage ("checking"), answer (the checked one), done, or error
"""

from __future__ import annotations

import asyncio

import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from rag.app.chat import Turn
from rag.app.http.errors import ApiError, error_response
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
from rag.app.http.schemas import AskRequest, SearchRequest
from rag.search.retrieval import RetrievalResult

health = APIRouter()
metrics = APIRouter(dependencies=[Depends(require_key)])
v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_key)])


ARTICLE_FIELDS = ("url", "title", "site", "published")  # what a search result says of its article


def retrieval_json(result: RetrievalResult, documents=None) -> list[dict]:
    """The retrieved chunks; with `documents`, each with its article's url, title, site and date."""
    about = {}
    if documents is not None:
        for doc_id in {r.chunk.doc_id for r in result.chunks}:
            doc = documents.get(doc_id)
            about[doc_id] = {key: doc.meta[key] for key in ARTICLE_FIELDS if doc and doc.meta.get(key)}
    return [{"doc_id": r.chunk.doc_id, "chunk_id": r.chunk.chunk_id, "score": round(r.score, 6), "rank": r.rank,
             "start": r.chunk.start, "end": r.chunk.end, "text": r.chunk.text, **about.get(r.chunk.doc_id, {})}
            for r in result.chunks]


@health.get("/health")
async def health_check(state: ServerState = Depends(server_state)):
    if state.load_error:
        return error_response(503, f"failed: {state.load_error}")
    if state.stopping:
        return error_response(503, "stopping", {"Retry-After": "1", "Connection": "close"})
    if not state.service.ready:
        return error_response(503, "loading", {"Retry-After": "5"})
    return {"status": "ok"}


@metrics.get("/metrics")
async def prometheus_metrics(state: ServerState = Depends(server_state)):
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    body = await anyio.to_thread.run_sync(generate_latest, state.metrics.registry)  # reads the index
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@v1.get("/status")
async def status(state: ServerState = Depends(server_state)):
    return {**state.service.status(), "ready": state.service.ready, "queue": state.queue.snapshot()}


@v1.get("/models")
async def models(state: ServerState = Depends(server_state)):
    return {"object": "list", "data": [{"id": state.service.generator.model_id, "object": "model", "created": 0,
                                        "owned_by": "rag"}]}


@v1.post("/search", dependencies=[Depends(require_ready)])
async def search(body: SearchRequest, state: ServerState = Depends(server_state)):
    index, result = await anyio.to_thread.run_sync(state.service.search, body.query, body.k, body.mode)
    results = await anyio.to_thread.run_sync(retrieval_json, result, index.documents)
    return {"query": body.query, "mode": body.mode, "generation": index.generation, "results": results}


@v1.get("/documents/{doc_id:path}", dependencies=[Depends(require_ready)])  # web ids hold slashes
async def document(doc_id: str, state: ServerState = Depends(server_state)):
    index = (await anyio.to_thread.run_sync(state.service.answerer)).index
    found = await anyio.to_thread.run_sync(index.document_and_chunks, doc_id)
    if found is None:
        raise ApiError(404, f"no document {doc_id!r} in the index")
    doc, chunks = found
    return {"doc_id": doc.doc_id, "text": doc.text, "date": doc.date, "sha256": doc.sha256, "path": doc.path,
            "chunks": [{"chunk_id": c.chunk_id, "start": c.start, "end": c.end} for c in chunks], **doc.meta}


@v1.post("/ask", dependencies=[Depends(require_ready)])
async def ask(body: AskRequest, request: Request, state: ServerState = Depends(server_state)):
    history = [Turn(turn.question, turn.answer) for turn in body.history]
    if not body.stream:
        job = submit(state, ask_work(state.service, body.question, body.k, body.min_support, history=history,
                                    frame=body.frame()))
        answer, _ = await result_of(request, job)
        return JSONResponse(answer.to_json(), headers={"X-Queue-Seconds": f"{job.queue_seconds:.3f}"})
    events: asyncio.Queue = asyncio.Queue()
    job = submit(state, ask_work(state.service, body.question, body.k, body.min_support, emitter(events), history,
                                body.frame()))

    async def stream():
        async for event, data in follow(request, job, events):
            if event == "rewrite":
                yield sse({"searched": data}, "rewrite")
            elif event == "stage":
                yield sse({"stage": data}, "stage")
            elif event == "retrieval":
                yield sse({"retrieved": retrieval_json(data)}, "retrieval")
            elif event == "token":
                yield sse({"delta": data}, "token")
            elif event == "result":
                yield sse(data[0].to_json(), "answer")
                yield sse({"queue_seconds": round(job.queue_seconds, 3)}, "done")
            elif event == "error":
                yield sse(data, "error")

    return sse_response(stream())
