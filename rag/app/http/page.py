"""The page at `/`: the browser face of the same API, served from package data (`app/web/`).

The page's files are public, like /health: they hold no data. Everything the page shows comes
from the /v1 routes, with the same key and limits as any client. Every response of the page
carries a strict Content-Security-Policy: scripts, styles, images and requests from this origin
only, no inline script, no frames.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import Response

from rag.app.http.errors import ApiError

WEB = Path(__file__).resolve().parent.parent / "web"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
                           "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
                           "form-action 'self'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}

router = APIRouter(include_in_schema=False)


def page_files() -> dict[str, Path]:
    """The files the page is made of, by name: only these are served (no path from a request
    ever reaches the file system)."""
    return {path.name: path for path in sorted(WEB.iterdir()) if path.suffix in CONTENT_TYPES}


def page_response(path: Path) -> Response:
    return Response(path.read_bytes(), media_type=CONTENT_TYPES[path.suffix], headers=HEADERS)


@router.get("/")
async def index():
    return page_response(WEB / "index.html")


@router.get("/page/{name}")
async def page_file(name: str):
    path = page_files().get(name)
    if path is None:
        raise ApiError(404, f"no page file {name!r}")
    return page_response(path)
