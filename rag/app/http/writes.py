"""Writing over HTTP (`rag serve --admin-key KEY`): add, replace or remove an article.

    POST   /v1/documents       {text | html, url?, title?, date?, id?}: added or replaced, 201
    DELETE /v1/documents/{id}  removed, 200; 404 when the index has no such article

Only the admin key writes: no key is 401, another key 403. A write goes through the writer lock
as `rag index` does and is one change of the index, which every reader (this server's next request
included) sees whole. The server never fetches an address: `url` is the article's metadata, its
`html` is read as given, so no request from outside can make it reach anywhere.
"""

from __future__ import annotations

from dataclasses import replace

import anyio.to_thread
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from rag.app.http.errors import ApiError
from rag.app.http.jobs import ServerState, require_admin, require_ready, server_state
from rag.app.http.schemas import DocumentRequest
from rag.errors import RagError
from rag.sources.exports import clean_id, record_document
from rag.store.locations import add_to_store, remove_from_store
from rag.text.documents import LoadReport

router = APIRouter(prefix="/v1", dependencies=[Depends(require_admin), Depends(require_ready)])


@router.post("/documents")
async def add_document(body: DocumentRequest, state: ServerState = Depends(server_state)):
    if not body.text and not body.html:
        raise ApiError(422, "an article needs its text or its html")
    record = {key: value for key, value in body.model_dump().items() if value is not None}
    try:
        document = record_document(record, fallback_id="", origin="POST /v1/documents")
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None
    if body.id:  # an id given wins over the one the url would give
        document = replace(document, doc_id=clean_id(body.id) or "")
    if not document.doc_id:
        raise ApiError(422, "an article without a url needs an id")
    service = state.service
    try:
        report = await anyio.to_thread.run_sync(lambda: add_to_store(service.index_dir, LoadReport([document]),
                                                                     service.embedder))
    except RagError as exc:
        raise ApiError(409 if "another rag is writing" in str(exc) else 500, str(exc)) from None
    return JSONResponse({"doc_id": document.doc_id, "changed": not report.up_to_date, "documents": report.documents,
                         "chunks": report.chunks, **document.meta}, status_code=201)


@router.delete("/documents/{doc_id:path}")
async def remove_document(doc_id: str, state: ServerState = Depends(server_state)):
    try:
        report = await anyio.to_thread.run_sync(remove_from_store, state.service.index_dir, [doc_id])
    except RagError as exc:
        raise ApiError(404 if str(exc).startswith("no document") else 500, str(exc)) from None
    return {"doc_id": doc_id, "removed": True, "chunks": report.chunks}
