"""The PostgreSQL store against a real PostgreSQL 18 with pgvector (tests/postgres.py): the same
ranking as the SQLite store, changes as single transactions, one writer at a time, one-line
errors, values always bound, and the commands over `--index postgresql://…`."""

import json
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from fakes import FakeEmbedder
from index_writer_child import SETTINGS, marker, read_round, wait_for_round, watch_while_it_writes
from postgres import PASSWORD, execute, running_postgres

from rag.errors import RagError
from rag.quality.indexbench import RandomEmbedder
from rag.search.retrieval import RetrievalSettings, Retriever
from rag.store.locking import IndexBusyError
from rag.store.postgres import build_index, open_index, remove_documents
from rag.store.postgres.connection import connect
from rag.store.postgres.writer import PostgresWriter, lock_key
from rag.store.sqlite import build_index as build_sqlite
from rag.store.sqlite import open_index as open_sqlite
from rag.text.chunking import ChunkerSettings

HERE = Path(__file__).parent
QUERIES = ["Abkommen unterzeichnet", "Putin Xi Moskau Einladung", "Parade Peking Weltkrieg", "Kooperation Energie",
           "alter Freund", "Shanghaier Organisation"]


@pytest.fixture(scope="module")
def server():
    with running_postgres() as started:
        yield started


@pytest.fixture
def postgres(server):
    return server.url


@pytest.fixture
def url(postgres, request):
    """A schema of its own for each test, and for each run of it: several indexes share one database."""
    import uuid

    schema = "t_" + request.node.name.lower().replace("[", "_").replace("]", "")[:40] + "_" + uuid.uuid4().hex[:8]
    return f"{postgres}&schema={schema}" if "?" in postgres else f"{postgres}?schema={schema}"


def embedder():
    return FakeEmbedder(max_tokens=256)


def named(index, hits):
    return [(index.chunks_by_id([i])[i].chunk_id, round(score, 5)) for i, score in hits]


def test_postgres_ranks_every_query_as_sqlite_does(url, seeds, tmp_path):
    # Vectors drawn at random per text: no two scores tie, so any difference in order is a difference.
    random = RandomEmbedder()
    build_index([seeds], url, random, ChunkerSettings(max_tokens=64, overlap_tokens=8))
    build_sqlite([seeds], tmp_path / "idx", random, ChunkerSettings(max_tokens=64, overlap_tokens=8))
    pg, sq = open_index(url), open_sqlite(tmp_path / "idx")
    assert pg.content_sha256 == sq.content_sha256 and pg.chunk_count == sq.chunk_count > 8
    for query in QUERIES:
        vector = random.embed([query])[0]
        assert named(pg, pg.lexical_search(query, 8)) == named(sq, sq.lexical_search(query, 8)), query
        assert named(pg, pg.dense_search(vector, 8)) == named(sq, sq.dense_search(vector, 8)), query
        for mode in ("dense", "bm25", "hybrid"):
            found = [Retriever(index, random, RetrievalSettings(k=5)).search(query, mode=mode).chunks
                     for index in (pg, sq)]
            assert [(r.chunk, r.rank) for r in found[0]] == [(r.chunk, r.rank) for r in found[1]], (query, mode)


def test_a_period_filters_inside_postgres_searches_as_in_sqlite_also_through_hnsw(url, tmp_path, monkeypatch):
    """The same rows within each period as the SQLite store (tests/test_search_within_period.py
    holds those to an index of only the period's articles), exact and through the HNSW index."""
    from test_search_within_period import PERIODS, QUERIES, SMALL, dated_articles

    from rag.store.postgres import schema

    folder, random = dated_articles(tmp_path / "articles"), RandomEmbedder()
    build_sqlite([folder], tmp_path / "idx", random, SMALL)
    monkeypatch.setattr(schema, "HNSW_FROM_CHUNKS", 10)
    build_index([folder], url, random, SMALL)
    pg, sq = open_index(url), open_sqlite(tmp_path / "idx")
    assert pg.has_approximate_search()
    for period in PERIODS:
        for query in QUERIES:
            vector = random.embed([query])[0]
            expected = named(sq, sq.dense_search(vector, 4, period))
            assert named(pg, pg.dense_search(vector, 4, period, exact=True)) == expected, (query, period)
            assert named(pg, pg.dense_search(vector, 4, period)) == expected, (query, period)  # a small graph: exact
            assert named(pg, pg.lexical_search(query, 4, period)) == named(sq, sq.lexical_search(query, 4, period))
            found = [Retriever(index, random, RetrievalSettings(k=4)).search(query, period=period).chunks
                     for index in (pg, sq)]
            assert [(r.chunk, r.rank) for r in found[0]] == [(r.chunk, r.rank) for r in found[1]], (query, period)


def test_adding_and_removing_an_article_is_one_change_an_open_reader_follows(url, seeds):
    build_index([seeds], url, embedder())
    reader = open_index(url)
    before = reader.generation
    extra = seeds.parent / "extra" / "pinguine.txt"
    extra.parent.mkdir()
    extra.write_text("Die Pinguine im Zoo von Peking bekamen einen neuen Teich.", encoding="utf-8")
    report = build_index([extra], url, embedder(), add_only=True)
    assert report.added == ["pinguine"] and report.embedded == 1
    with reader.snapshot():
        assert reader.generation == before + 1 and "pinguine" in reader.documents
    assert {reader.chunks_by_id([i])[i].doc_id for i, _ in reader.lexical_search("Pinguine Teich", 3)} == {"pinguine"}
    removed = remove_documents(url, ["pinguine"])
    assert removed.removed == ["pinguine"] and removed.chunks == 1
    assert reader.lexical_search("Pinguine Teich", 3) == [] and reader.generation == before + 2
    assert build_index([seeds], url, embedder()).up_to_date  # nothing else changed


def test_a_second_writer_waits_or_with_no_wait_fails_at_once(url, seeds):
    build_index([seeds], url, embedder())
    holder = PostgresWriter.for_existing(url)  # holds the writer lock from here on
    try:
        with pytest.raises(IndexBusyError, match="another rag is writing the index at .*; try again"):
            build_index([seeds], url, embedder(), wait=False)
        said, done = [], threading.Event()

        def second() -> None:
            build_index([seeds], url, embedder(), on_wait=said.append)
            done.set()

        thread = threading.Thread(target=second)
        thread.start()
        deadline = time.monotonic() + 30
        while not said:  # it has reached the lock and says it waits
            assert time.monotonic() < deadline and thread.is_alive(), "the second writer did not wait"
            time.sleep(0.01)
        assert not done.is_set()  # and it is still waiting: the lock is held
    finally:
        holder.close()  # a writer that ends, or dies, lets go of the lock with its connection
    thread.join(30)
    assert done.is_set() and "waiting for it to finish" in said[0] and PASSWORD not in said[0]


def test_failures_to_connect_are_one_line_without_the_password(postgres, url):
    from conftest import free_port

    wrong_port = url.replace(url.split("@")[1].split("/")[0], f"127.0.0.1:{free_port()}")
    for target, reason in [(wrong_port, "Connection refused"), (url.replace(quote(PASSWORD, safe=""), "wrong"),
                                                                  "password authentication failed")]:
        with pytest.raises(RagError) as failure:
            open_index(target)
        message = str(failure.value)
        assert message.startswith("cannot connect to PostgreSQL at postgresql://rag:***@") and reason in message
        assert "\n" not in message and PASSWORD not in message and quote(PASSWORD, safe="") not in message
    with pytest.raises(RagError, match="no index at .*; build one with `rag index --index URL` first"):
        open_index(url)


def unique(name: str) -> str:
    """A role or database name of this test run's own: roles are cluster-wide and outlive a test,
    so a rerun against the same server, in any order, must not meet the ones made before."""
    import uuid

    return f"{name}_{uuid.uuid4().hex[:8]}"


def test_a_database_without_the_vector_extension_is_one_line(postgres):
    admin, name = postgres, unique("plain")
    execute(admin, f"CREATE ROLE {name} LOGIN PASSWORD 'plain'", f"CREATE DATABASE {name} OWNER {name}")
    plain = admin.replace(admin.split("//")[1].split("@")[0], f"{name}:plain").replace("/postgres", f"/{name}")
    with pytest.raises(RagError) as failure:
        build_index([HERE.parent / "seeds"], plain, embedder())
    message = str(failure.value)
    assert "has no `vector` extension (pgvector)" in message and "CREATE EXTENSION vector" in message


def test_values_are_bound_never_formatted_into_sql(url, tmp_path):
    articles = tmp_path / "odd"
    articles.mkdir()
    odd = "it's; DROP TABLE chunks; -- \\n"
    (articles / f"{odd}.txt").write_text("Er sagte: 'Nein; niemals' -- und ging. Backslash \\ und \x01 bleiben.",
                                         encoding="utf-8")
    build_index([articles], url, embedder())
    index = open_index(url)
    [row] = index.document_list()
    assert row["doc_id"] == odd and "Backslash \\ und \x01 bleiben" in index.documents[odd].text
    assert remove_documents(url, [odd]).removed == [odd]
    assert open_index(url).document_list() == [] and open_index(url).chunk_count == 0


def test_a_read_only_role_can_serve_what_another_role_wrote(postgres, url, seeds):
    build_index([seeds], url, embedder())
    schema, name = url.rsplit("schema=", 1)[1], unique("reader")
    execute(postgres, f"CREATE ROLE {name} LOGIN PASSWORD 'reader'", f"GRANT USAGE ON SCHEMA {schema} TO {name}",
            f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {name}")
    reader = url.replace(url.split("//")[1].split("@")[0], f"{name}:reader")
    index = open_index(reader)
    assert index.lexical_search("Abkommen", 3) and len(index.documents) == 2
    with pytest.raises(RagError, match=f"could not write the index at postgresql://{name}:\\*\\*\\*@"):
        remove_documents(reader, ["000_81614b4d2948c4c6"])


def test_the_commands_work_over_a_postgresql_url(url, seeds):
    def rag(*arguments: str) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, str(HERE / "fake_rag.py"), *arguments], capture_output=True,
                              text=True, timeout=120)
        assert quote(PASSWORD, safe="") not in done.stdout + done.stderr
        return done

    built = rag("index", str(seeds), "--index", url)
    assert built.returncode == 0 and "indexed 2 documents into 6 chunks at postgresql://rag:***@" in built.stdout
    listed = rag("documents", "--index", url, "--json")
    assert [json.loads(line)["doc_id"] for line in listed.stdout.splitlines()] == sorted(
        p.stem for p in seeds.glob("*.txt"))
    answer = json.loads(rag("ask", "Wie viele Abkommen wurden unterzeichnet?", "--json", "--index", url).stdout)
    assert answer["citations"] and answer["citations"][0]["verified"]
    document = open_index(url).documents[answer["citations"][0]["doc_id"]]
    citation = answer["citations"][0]
    assert document.text[citation["start"]:citation["end"]] == citation["quote"]
    removed = rag("remove", citation["doc_id"], "--index", url, "--no-wait")
    assert removed.returncode == 0 and "removed 1 document" in removed.stdout
    refused = rag("documents", "--index", url.replace("/postgres", "/nowhere"))
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr


def test_chunker_settings_of_the_index_are_kept_by_remove(url, seeds):
    settings = ChunkerSettings(max_tokens=48, overlap_tokens=8)
    build_index([seeds], url, embedder(), settings)
    before = open_index(url).manifest.chunker
    remove_documents(url, ["003_f1e7237187863abb"])
    assert open_index(url).manifest.chunker == before


def test_the_writer_lock_key_is_per_schema():
    assert lock_key("a") != lock_key("b") and lock_key("a") == lock_key("a")
    assert -2**63 <= lock_key("archive") < 2**63


def test_the_database_restarting_under_rag_serve_is_a_503_and_then_answers_again(server, url, seeds):
    import httpx
    from conftest import LiveServer
    from fakes import SlowGenerator

    from rag.app.http.server import create_app
    from rag.app.service import AnswerService
    from rag.store.base import StoreUnavailable

    build_index([seeds], url, embedder())
    reader = open_index(url)
    service = AnswerService(url, embedder(), SlowGenerator("Mehr als 20 Abkommen [1].", 0.0))
    live = LiveServer(create_app(service)).start()
    try:
        live.wait_ready()
        question = {"question": "Wie viele Abkommen wurden unterzeichnet?"}
        assert httpx.post(f"{live.url}/v1/ask", json=question, timeout=30).status_code == 200
        server.stop()
        try:
            with pytest.raises(StoreUnavailable, match="cannot be reached|cannot connect"):
                reader.lexical_search("Abkommen", 3)
            for route in ("/v1/search", "/v1/ask"):
                down = httpx.post(f"{live.url}{route}", json={"query": "Abkommen"} if "search" in route else question,
                                  timeout=30)
                assert down.status_code == 503 and down.headers["retry-after"] == "5", down.text
                assert "postgresql://rag:***@" in down.json()["error"]["message"]
            assert httpx.get(f"{live.url}/v1/status").status_code == 503
        finally:
            server.start()
        # The first request after the restart is answered: no restart of rag serve, a new connection.
        back = httpx.post(f"{live.url}/v1/ask", json=question, timeout=30)
        assert back.status_code == 200 and back.json()["citations"], back.text
        assert reader.lexical_search("Abkommen", 3)
    finally:
        live.stop()


def consistent_state(url: str, seed_ids: set[str], rounds: int) -> str | None:
    """The index opens and holds the seeds plus at most one extra article, whole; returns the extra."""
    index = open_index(url)
    with index.snapshot() as conn:
        docs = set(index.documents)
        extras = docs - seed_ids
        assert seed_ids <= docs and len(extras) <= 1, docs
        chunk_ids = {row[0] for row in conn.execute("SELECT id FROM chunks").fetchall()}
        assert chunk_ids == {row[0] for row in conn.execute("SELECT chunk_id FROM vectors").fetchall()}
        assert len(chunk_ids) == index.chunk_count
        for doc_id in docs:  # every article whole: its chunks run from its first character to its last
            chunks = index.chunks_of(doc_id)
            assert chunks[0].start == 0 and chunks[-1].end == len(index.documents[doc_id].text), doc_id
        for i in range(1, rounds + 1):
            hits = {index.chunks_by_id([c])[c].doc_id for c, _ in index.lexical_search(marker(i), 5)}
            assert hits == ({f"extra_{i}"} if f"extra_{i}" in docs else set()), (i, hits)
    return next(iter(extras), None)


def test_a_writer_killed_at_random_moments_leaves_the_old_or_the_new_state(url, seeds, tmp_path):
    build_index([seeds], url, embedder(), SETTINGS)
    seed_ids = set(open_index(url).documents)
    chance, round_file, seen = random.Random(20261204), tmp_path / "round", []
    for run in range(8):
        child = subprocess.Popen([sys.executable, str(HERE / "index_writer_child.py"), str(seeds), url,
                                  str(round_file)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline() == "ready\n", child.stderr.read()
            wait_for_round(round_file, 1 + run % 4, child)
            time.sleep(chance.uniform(0, 0.1))
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
        finally:
            if child.poll() is None:
                child.kill()
        seen.append(consistent_state(url, seed_ids, read_round(round_file)))
        for path in seeds.glob("extra_*.txt"):
            path.unlink()
        # The dead writer's connection, and with it its lock, is gone once the server notices: waiting for it
        # (not --no-wait) keeps this from depending on how soon that is.
        build_index([seeds], url, embedder(), SETTINGS)
        assert consistent_state(url, seed_ids, read_round(round_file)) is None
    assert len(set(seen)) > 1, seen


def test_an_open_reader_never_sees_a_half_written_change(url, seeds, tmp_path):
    build_index([seeds], url, embedder(), SETTINGS)
    generations, checks = watch_while_it_writes(open_index(url), seeds, url, tmp_path / "round")
    assert len(generations) > 5 and checks > len(generations), (generations, checks)


def test_the_retrieval_bench_gives_the_same_rows_on_both_stores(url, tmp_path):
    """`rag bench retrieval --index URL`: the XQuAD-shaped paragraphs built into PostgreSQL rank as in SQLite."""
    from test_bench import PARAGRAPHS, write_xquad

    from rag.quality.xquad import retrieval_benchmark

    xquad = write_xquad(tmp_path)
    rows = [[(r.variant, r.language, r.recall, r.mrr) for r in
             retrieval_benchmark(xquad, RandomEmbedder(), None, store=store).rows] for store in (None, url)]
    assert rows[0] == rows[1] and len(rows[0]) >= 2
    assert open_index(url).chunk_count == len(PARAGRAPHS)


def served(url: str):
    """A real uvicorn server over the index at `url`, with the fake models."""
    from conftest import LiveServer
    from fakes import SlowGenerator

    from rag.app.http.server import create_app
    from rag.app.service import AnswerService

    live = LiveServer(create_app(AnswerService(url, embedder(), SlowGenerator("Mehr als 20 Abkommen [1].", 0.0))))
    live.start().wait_ready()
    return live


def found_by(live, query: str) -> set[str]:
    import httpx

    return {hit["doc_id"] for hit in httpx.post(f"{live.url}/v1/search", json={"query": query, "mode": "bm25"},
                                                timeout=30).json()["results"]}


def penguins(folder: Path) -> Path:
    article = folder / "pinguine.txt"
    article.write_text("Die Pinguine im Zoo von Peking bekamen einen neuen Teich.", encoding="utf-8")
    return article


def test_rag_serve_sees_an_article_another_process_committed_at_its_next_request(url, seeds, tmp_path):
    build_index([seeds], url, embedder())
    live = served(url)
    try:
        assert found_by(live, "Pinguine Teich") == set()
        added = subprocess.run([sys.executable, str(HERE / "fake_rag.py"), "index", "--add", str(penguins(tmp_path)),
                                "--index", url], capture_output=True, text=True, timeout=120)
        assert added.returncode == 0, added.stderr
        # The first request after the commit (the command has exited, so it is committed) finds it:
        # no polling interval to wait out, which is the property, however slow the machine.
        assert found_by(live, "Pinguine Teich") == {"pinguine"}
    finally:
        live.stop()


def test_rag_serve_reads_a_streaming_standby_while_rag_index_writes_the_primary(server, url, seeds, tmp_path):
    build_index([seeds], url, embedder())
    standby = server.standby()
    try:
        standby_url = url.replace(server.url, standby.url)
        live = served(standby_url)
        try:
            assert found_by(live, "Pinguine Teich") == set()
            build_index([penguins(tmp_path)], url, embedder(), add_only=True)  # to the primary
            committed, deadline = time.monotonic(), time.monotonic() + 30
            while found_by(live, "Pinguine Teich") != {"pinguine"}:  # replication takes what it takes, bounded
                assert time.monotonic() < deadline, "the standby did not show the article in 30 s"
                time.sleep(0.05)
            print(f"seen on the standby {time.monotonic() - committed:.3f} s after the commit")
            with pytest.raises(RagError, match="could not write the index|read-only"):
                build_index([seeds], standby_url, embedder())  # a standby takes no writes, in one line
        finally:
            live.stop()
    finally:
        standby.remove()


def test_above_its_size_dense_search_goes_through_hnsw_and_finds_what_exact_search_finds(url, seeds, monkeypatch):
    """The HNSW index is built in the change that crosses HNSW_FROM_CHUNKS, grows with each insert,
    and is built again after a rebuild; the planner uses it, and on a small index it finds the exact
    nearest chunks (recall on 100,000 chunks is measured by `rag bench index`, docs/index.md)."""
    from rag.store.postgres import schema

    small, random = ChunkerSettings(max_tokens=64, overlap_tokens=8), RandomEmbedder()
    build_index([seeds], url, random, small)
    index = open_index(url)
    assert not index.has_approximate_search()  # far below the size: exact only
    monkeypatch.setattr(schema, "HNSW_FROM_CHUNKS", 10)
    extra = seeds.parent / "extra"
    extra.mkdir()
    penguins(extra)
    build_index([extra], url, random, small, add_only=True)  # the change that crosses the size
    assert index.has_approximate_search() and index.chunk_count > 10

    def agree():
        for query in QUERIES + ["Pinguine Teich"]:
            vector = random.embed([query])[0]
            assert named(index, index.dense_search(vector, 8)) == named(index, index.dense_search(vector, 8, exact=True))
    agree()
    conn, _ = connect(url)
    dimension = index.manifest.embedder["dimension"]
    conn.execute("SET enable_seqscan = off")  # a tiny table: make the planner show it can use the index at all
    plan = conn.execute(f"EXPLAIN SELECT chunk_id FROM vectors ORDER BY vector::vector({dimension}) <#> "
                        f"'[{','.join(['0.1'] * dimension)}]'::vector({dimension}) LIMIT 5").fetchall()
    conn.close()
    assert "vectors_hnsw" in " ".join(row[0] for row in plan), plan
    remove_documents(url, ["pinguine"])
    assert "pinguine" not in {index.chunks_by_id([i])[i].doc_id for i, _ in
                              index.dense_search(random.embed(["Pinguine Teich"])[0], 50)}
    agree()
    build_index([seeds], url, random, ChunkerSettings(max_tokens=48, overlap_tokens=8))  # a rebuild: new chunker
    index = open_index(url)
    assert index.has_approximate_search() and index.chunk_count > 10
    agree()


def test_the_index_bench_builds_each_size_in_a_schema_of_its_own_and_drops_it(postgres, url, tmp_path):
    from test_bench import write_xquad

    from rag.quality.indexbench import run_index_bench

    xquad = write_xquad(tmp_path)
    rows = run_index_bench([20, 60], list(xquad.paragraphs.values()), [q.question["de"] for q in xquad.questions],
                           store=url)
    assert [r["store"] for r in rows] == ["postgresql", "postgresql"] and rows[0]["chunks"] < rows[1]["chunks"]
    for row in rows:
        assert 0 < row["add_one_seconds"] < 5 and 0 < row["remove_one_seconds"] < 5 and 0 < row["open_seconds"] < 5
        assert all(0 < row["query_ms"][m]["p50"] <= row["query_ms"][m]["p95"] for m in ("dense", "lexical", "hybrid"))
        assert row["disk_bytes"] > row["vector_bytes"] and row["dense_recall"] == {"@10": 1.0, "@50": 1.0}
    schema = url.rsplit("schema=", 1)[1]
    made = execute(postgres, f"SELECT nspname FROM pg_namespace WHERE starts_with(nspname, '{schema}_bench_')")
    assert made == []


def test_two_rag_serve_replicas_on_one_store_share_the_load_and_both_see_a_new_article(url, seeds):
    """The deployment of docs/scaling.md in small: two servers over one PostgreSQL index, the load
    spread between them by `rag bench http --url A,B`, and an article indexed once reaches both."""
    from rag.quality.loadtest import run_load

    build_index([seeds], url, embedder())
    replicas = [served(url), served(url)]
    try:
        load = run_load([live.url for live in replicas], ["Wie viele Abkommen wurden unterzeichnet?"] * 8,
                        concurrency=4)
        assert load.statuses == {200: 8} and load.summary()["answered_by"] == {live.url: 4 for live in replicas}
        build_index([penguins(seeds)], url, embedder(), add_only=True)
        assert all("pinguine" in found_by(live, "Pinguine Teich") for live in replicas)
    finally:
        for live in replicas:
            live.stop()


@pytest.mark.model
def test_the_real_models_answer_from_postgres_with_the_verified_citation_sqlite_gives(url, seeds, tmp_path):
    """The seeds indexed with the default embedder (E5) into PostgreSQL and into SQLite, one question
    asked of each by the default answer model: the same answer, citing the same characters."""
    from rag.app import pipeline

    e5 = pipeline.make_embedder()
    build_index([seeds], url, e5)
    build_sqlite([seeds], tmp_path / "idx", e5)
    generator = pipeline.make_generator()
    answers = [pipeline.answerer_for(index, e5, generator).ask("How many agreements were signed?")
               for index in (open_index(url, e5.model_id), open_sqlite(tmp_path / "idx", e5.model_id))]
    cited = [[(c.doc_id, c.start, c.end, c.quote) for c in answer.citations if c.verified] for answer in answers]
    assert "20" in answers[0].answer and cited[0], answers[0].answer
    assert answers[0].answer == answers[1].answer and cited[0] == cited[1]
    documents = open_index(url).documents
    assert all(documents[doc_id].text[start:end] == quote for doc_id, start, end, quote in cited[0])


def test_article_metadata_is_kept_and_the_previous_format_is_converted_in_place(url, seeds, tmp_path):
    """Pages' metadata round-trips as in SQLite; an index of format 2 (before metadata) is refused by a
    reader in one line and converted by the next writer, keeping its articles and vectors."""
    import psycopg

    from rag.sources.exports import record_document
    from rag.store.sqlite import FORMAT_VERSION
    from rag.text.documents import LoadReport

    page = record_document({"url": "https://www.tagesblick.de/politik/a-1.html?utm_source=x", "title": "Abkommen",
                            "date": "2025-09-02", "text": "Beide Seiten unterzeichneten mehr als 20 Abkommen.",
                            "ressort": "Politik"}, "a-1", "export.jsonl")
    loaded = LoadReport([page])
    build_index([], url, embedder(), loaded=loaded)
    build_sqlite([], tmp_path / "idx", embedder(), loaded=loaded)
    for index in (open_index(url), open_sqlite(tmp_path / "idx")):
        assert index.documents["tagesblick.de/politik/a-1"].meta == page.meta
        [row] = index.document_list()
        assert row["title"] == "Abkommen" and row["url"] == "https://tagesblick.de/politik/a-1.html"
        assert row["date"] == row["published"] == "2025-09-02" and row["fields"] == {"ressort": "Politik"}
    schema = url.rsplit("schema=", 1)[1]
    with psycopg.connect(url.split("?")[0], autocommit=True) as conn:
        conn.execute(f"ALTER TABLE {schema}.documents DROP COLUMN meta")
        conn.execute(f"UPDATE {schema}.meta SET value = '2' WHERE key = 'format_version'")
    with pytest.raises(RagError, match="format version 2, this rag reads version 3; `rag index` or `rag remove`"):
        open_index(url)
    assert build_index([], url, embedder(), loaded=loaded).embedded == 0  # converted, nothing embedded again
    converted = open_index(url)
    assert converted.manifest.format_version == FORMAT_VERSION
    # The article kept; the metadata its old format could not hold is not invented (a changed page brings it).
    assert converted.documents["tagesblick.de/politik/a-1"].text == page.text and len(converted.documents) == 1


def test_the_follower_keeps_its_state_in_postgres_and_rag_serve_sees_what_it_adds(url, monkeypatch):
    from test_follow import FollowedSite, article
    from typer.testing import CliRunner

    from rag.app import pipeline
    from rag.app.cli import app
    from rag.sources.urls import document_id
    from rag.store.locations import read_follow_state

    monkeypatch.setattr(pipeline, "make_embedder", lambda path=None: FakeEmbedder(max_tokens=256))
    with FollowedSite() as site:
        site.publish(article(1))

        def follow():
            done = CliRunner().invoke(app, ["follow", f"{site.base}/feed.rss", "--index", url, "--once", "--delay", "0",
                                            "--allow-private-hosts"])
            assert done.exit_code == 0, done.output
            return done.stdout

        assert "1 added or changed" in follow()
        live = served(url)
        try:
            assert found_by(live, "Meldung") == {document_id(site.base + "/politik/meldung-1.html")}
            site.publish(article(2))
            assert "1 added or changed" in follow()
            assert found_by(live, "Meldung") == {document_id(site.base + a.path) for a in site.articles}
        finally:
            live.stop()
        assert "1 unchanged (304)" in follow()
    state = read_follow_state(url)
    assert state.sources[f"{site.base}/feed.rss"]["polls"] == 3 and len(state.fetched) == 2
