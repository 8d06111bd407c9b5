"""A German news site for the tests: article pages with the furniture real ones carry (menu,
cookie banner, teaser box, related links, share bar, comments, a picture with its caption,
JSON-LD and Open Graph tags), rendered from an article's paragraphs.

The furniture's sentences are listed in FURNITURE, so a test can check none of them was indexed.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field

SITE = "Tagesblick"
FURNITURE = [
    "Wir verwenden Cookies, um Ihnen das beste Nutzererlebnis zu bieten.",
    "Alle akzeptieren",
    "Startseite", "Politik", "Wirtschaft", "Sport", "Kultur",
    "Putin im Gespräch mit Xi",  # the picture's caption
    "Jetzt den Tagesblick-Newsletter abonnieren und nichts mehr verpassen!",
    "Mehr zum Thema",
    "Bundestag debattiert über den Haushalt",
    "Die Inflation sinkt im Oktober leicht",
    "Teilen auf Facebook", "Artikel drucken",
    "Leserkommentare",
    "Das ist doch alles nur Show, schreibt ein Leser.",
    "Impressum", "Datenschutz",
]


@dataclass
class Article:
    path: str  # on the site, e.g. /politik/putin-xi-101.html
    title: str
    paragraphs: list[str]
    published: str | None  # ISO 8601; None: the page says nowhere when it was published
    modified: str | None = None
    author: str = "Anna Beispiel"
    section: str = "Politik"
    extra_head: str = ""
    subheadings: dict[int, str] = field(default_factory=dict)  # before paragraph n


def article_page(article: Article, base: str) -> str:
    """The article's page as a news site serves it (UTF-8)."""
    e = html.escape
    url = base.rstrip("/") + article.path
    ld = {"@context": "https://schema.org", "@type": "NewsArticle", "headline": article.title,
          "author": {"@type": "Person", "name": article.author},
          "publisher": {"@type": "Organization", "name": SITE}, "mainEntityOfPage": url}
    if article.published:
        ld["datePublished"] = article.published
    if article.modified:
        ld["dateModified"] = article.modified
    body = []
    for n, paragraph in enumerate(article.paragraphs):
        if n in article.subheadings:
            body.append(f"<h2>{e(article.subheadings[n])}</h2>")
        if "\n" in paragraph:  # lines of one paragraph: the bullet points of a summary box
            body.append("<ul>" + "".join(f"<li>{e(line)}</li>" for line in paragraph.split("\n")) + "</ul>")
        else:
            body.append(f"<p>{e(paragraph)}</p>")
        if n == 0:
            body.append('<figure class="picture"><img src="/img/putin-xi.jpg" alt="Putin und Xi">'
                        '<figcaption>Putin im Gespräch mit Xi <span class="credit">SPUTNIK/AFP</span></figcaption>'
                        '</figure>')
        if n == 1:
            body.append('<aside class="teaser"><p>Jetzt den Tagesblick-Newsletter abonnieren und nichts mehr '
                        'verpassen!</p></aside>')
    modified = f'<meta property="article:modified_time" content="{article.modified}">' if article.modified else ""
    published = f'<meta property="article:published_time" content="{article.published}">' if article.published else ""
    byline = f'Von {e(article.author)}' + (f' · <time datetime="{article.published}">{article.published[:10]}</time>'
                                           if article.published else "")
    return f"""<!DOCTYPE html>
<html lang="de">
<head>
<meta charset="utf-8">
<title>{e(article.title)} | {SITE}</title>
<link rel="canonical" href="{e(url)}">
<meta property="og:type" content="article">
<meta property="og:title" content="{e(article.title)}">
<meta property="og:site_name" content="{SITE}">
<meta property="og:url" content="{e(url)}">
{published}
{modified}
<meta name="author" content="{e(article.author)}">
<script type="application/ld+json">{json.dumps(ld, ensure_ascii=False)}</script>
{article.extra_head}
</head>
<body>
<div id="cookie-banner" class="cookie consent"><p>Wir verwenden Cookies, um Ihnen das beste Nutzererlebnis zu
bieten.</p><button>Alle akzeptieren</button></div>
<header><nav class="main-menu"><ul><li><a href="/">Startseite</a></li><li><a href="/politik/">Politik</a></li>
<li><a href="/wirtschaft/">Wirtschaft</a></li><li><a href="/sport/">Sport</a></li>
<li><a href="/kultur/">Kultur</a></li></ul></nav></header>
<main>
<article>
<header><p class="kicker">{e(article.section)}</p><h1>{e(article.title)}</h1>
<p class="byline">{byline}</p>
</header>
<div class="share"><a href="#">Teilen auf Facebook</a> <a href="#">Artikel drucken</a></div>
<div class="article-body">
{chr(10).join(body)}
</div>
</article>
<section class="related"><h2>Mehr zum Thema</h2><ul>
<li><a href="/politik/haushalt-102.html">Bundestag debattiert über den Haushalt</a></li>
<li><a href="/wirtschaft/inflation-103.html">Die Inflation sinkt im Oktober leicht</a></li></ul></section>
<section id="comments" class="comments"><h2>Leserkommentare</h2>
<div class="comment"><p>Das ist doch alles nur Show, schreibt ein Leser.</p></div></section>
</main>
<footer><a href="/impressum">Impressum</a> <a href="/datenschutz">Datenschutz</a></footer>
</body>
</html>
"""


def paragraphs_of(text: str) -> list[str]:
    """An article's text (as rag indexes a .txt) as the paragraphs of a page."""
    return [p.strip() for p in text.split("\n\n") if p.strip()]


# ---- the site, served on a loopback port ----------------------------------------------------------

SECTION_FRONT = """<!DOCTYPE html><html lang="de"><head><meta charset="utf-8"><title>Politik | Tagesblick</title>
<meta property="og:type" content="website"></head><body><nav><a href="/">Startseite</a></nav><main><h1>Politik</h1>
<ul><li><a href="/politik/a-1.html">Putin und Xi treffen sich in Peking</a></li>
<li><a href="/politik/a-2.html">Bundestag debattiert über den Haushalt</a></li></ul></main></body></html>"""
LOGIN_TEASER = """<!DOCTYPE html><html lang="de"><head><meta charset="utf-8"><title>Exklusiv | Tagesblick</title></head>
<body><article><h1>Was Putin wirklich will</h1><p>Der Kreml plant Großes. Lesen Sie weiter mit Tagesblick Plus.</p>
<form><input name="user"><input name="password" type="password"><button>Anmelden</button></form></article></body></html>"""


def rss(items: list[tuple[str, str, str | None]], base: str) -> str:
    """An RSS 2.0 feed of (path, title, RFC 2822 date or None) items."""
    entries = "".join(f"<item><title>{html.escape(t)}</title><link>{base}{p}?utm_source=rss&amp;utm_medium=feed</link>"
                      f"<guid>{base}{p}</guid>{f'<pubDate>{d}</pubDate>' if d else ''}</item>" for p, t, d in items)
    return f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{SITE}</title>' \
           f"<link>{base}/</link>{entries}</channel></rss>"


def atom(items: list[tuple[str, str, str | None]], base: str) -> str:
    """An Atom feed of (path, title, ISO date or None) items, with relative links."""
    entries = "".join(f"<entry><title>{html.escape(t)}</title><link href=\"{p}\"/><id>{base}{p}</id>"
                      f"{f'<published>{d}</published>' if d else ''}</entry>" for p, t, d in items)
    return f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>{SITE}</title>' \
           f'<link href="{base}/"/><id>{base}/</id>{entries}</feed>'


def news_sitemap(items: list[tuple[str, str, str | None]], base: str) -> str:
    """A news sitemap of (path, title, ISO date or None) items."""
    urls = "".join(f"<url><loc>{base}{p}</loc>{f'<lastmod>{d}</lastmod>' if d else ''}<news:news><news:publication>"
                   f"<news:name>{SITE}</news:name><news:language>de</news:language></news:publication>"
                   f"{f'<news:publication_date>{d}</news:publication_date>' if d else ''}"
                   f"<news:title>{html.escape(t)}</news:title>"
                   f"</news:news></url>" for p, t, d in items)
    return ('<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
            f'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">{urls}</urlset>')


class NewsSite:
    """A real HTTP server on 127.0.0.1 serving `routes` (path -> (status, headers, body) or a function
    of the request handler returning one), with the articles' pages; every request is logged as
    (monotonic time, method, path, headers)."""

    def __init__(self, robots: str = "User-agent: *\nDisallow: /intern/\n"):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.routes: dict[str, object] = {"/robots.txt": (200, {"Content-Type": "text/plain"}, robots.encode())}
        self.log: list[tuple[float, str, str, dict]] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 (the http.server name)
                import time

                site.log.append((time.monotonic(), "GET", self.path, dict(self.headers)))
                route = site.routes.get(self.path.split("?")[0])
                status, headers, body = route(self) if callable(route) else route or (404, {}, b"not found")
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if not hasattr(body, "__next__"):
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for piece in body:
                        self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading: the cap worked

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "NewsSite":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def page(self, article: Article, etag: str | None = None) -> None:
        """Serve `article` at its path, answering 304 to a request that names its ETag."""
        body = article_page(article, self.base).encode("utf-8")
        tag = etag or f'"{hash(body) & 0xffffffff:x}"'

        def answer(handler):
            if handler.headers.get("If-None-Match") == tag:
                return 304, {"ETag": tag}, b""
            return 200, {"Content-Type": "text/html; charset=utf-8", "ETag": tag,
                         "Last-Modified": "Tue, 02 Sep 2025 10:00:00 GMT"}, body

        self.routes[article.path] = answer

    def requests_for(self, path: str) -> list[tuple[float, str, str, dict]]:
        return [entry for entry in self.log if entry[2].split("?")[0] == path]
