"""A period filters inside the searches: over the temporal set's 30 dated articles (and one
undated), dense and BM25 search of the whole index within a period find exactly what they find in
an index holding only that period's articles, with the same scores, so the filter is part of the
search (a filter of the top k afterwards would come back short). The PostgreSQL store gives the
same rows (tests/test_postgres.py)."""

import shutil
from datetime import date
from pathlib import Path

import pytest

from rag.quality.indexbench import RandomEmbedder
from rag.search.retrieval import RetrievalSettings, Retriever
from rag.store.sqlite import build_index, open_index, remove_documents
from rag.text.chunking import ChunkerSettings
from rag.text.documents import read_document
from rag.text.periods import Period

TEMPORAL = Path(__file__).parents[1] / "eval" / "temporal" / "articles"
SMALL = ChunkerSettings(max_tokens=64, overlap_tokens=8)
QUERIES = ["Oberbürgermeister Rheinfeld", "Kosten der Rheinbrücke Nord", "Dieselpreis Liter", "Arbeitslosenquote",
           "Klinikum Leitung", "Streik Busfahrer"]
PERIODS = [Period(date(2025, 3, 1), date(2025, 3, 31), "märz 2025"),
           Period(date(2025, 10, 1), date(2025, 10, 31), "oktober 2025"),
           Period(date(2025, 1, 1), date(2025, 6, 30), "erstes halbjahr 2025"),
           Period(date(2025, 11, 4), date(2025, 11, 30), "ende november 2025")]  # no article


def dated_articles(folder: Path) -> Path:
    """The temporal set's articles and one without a date line (undated: inside no period)."""
    shutil.copytree(TEMPORAL, folder)
    (folder / "900_undatiert.txt").write_text(
        "Die Rheinbrücke Nord, der Dieselpreis und das Klinikum Rheinfeld: ein Überblick ohne Datum. "
        "Der Oberbürgermeister von Rheinfeld äußerte sich zur Arbeitslosenquote und zum Streik der Busfahrer.",
        encoding="utf-8")
    return folder


def published_in(folder: Path, period: Period) -> list[Path]:
    return [path for path in sorted(folder.iterdir())
            if (day := read_document(path).date) and date.fromisoformat(day) in period]


def named(index, hits):
    return [(index.chunks_by_id([i])[i].doc_id, index.chunks_by_id([i])[i].chunk_id, round(score, 5))
            for i, score in hits]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = dated_articles(tmp_path_factory.mktemp("temporal") / "articles")
    build_index([folder], folder.parent / "index", RandomEmbedder(), SMALL)
    return folder, open_index(folder.parent / "index")


@pytest.mark.parametrize("period", PERIODS, ids=lambda p: p.text)
def test_a_period_searches_as_an_index_of_only_its_articles_would(corpus, period, tmp_path):
    folder, index = corpus
    inside = published_in(folder, period)
    random = RandomEmbedder()
    if inside:
        build_index(inside, tmp_path / "part", random, SMALL)
        part = open_index(tmp_path / "part")
    for query in QUERIES:
        vector = random.embed([query])[0]
        dense, lexical = index.dense_search(vector, 3, period), index.lexical_search(query, 3, period)
        if not inside:
            assert dense == [] and lexical == [], (query, period)
            continue
        assert named(index, dense) == named(part, part.dense_search(vector, 3)), (query, period)
        assert named(index, lexical) == named(part, part.lexical_search(query, 3)), (query, period)
        assert {index.chunks_by_id([i])[i].doc_id for i, _ in dense} <= {p.stem for p in inside}


def test_the_filter_is_inside_the_search_not_after_it(corpus):
    """The three nearest chunks of the whole index lie outside March; within March the search still
    returns three, all from March: the chunks a filter after the top three would have had none of."""
    folder, index = corpus
    march = PERIODS[0]
    random = RandomEmbedder()
    in_march = {p.stem for p in published_in(folder, march)}
    for query in QUERIES:
        vector = random.embed([query])[0]
        everywhere = {index.chunks_by_id([i])[i].doc_id for i, _ in index.dense_search(vector, 3)}
        within = [index.chunks_by_id([i])[i].doc_id for i, _ in index.dense_search(vector, 3, march)]
        assert len(within) == 3 and set(within) <= in_march
        if not everywhere & in_march:
            break
    else:
        pytest.fail("every query's nearest chunks were in March: the test shows nothing")


def test_hybrid_retrieval_within_a_period_keeps_to_it_and_undated_articles_stay_out(corpus):
    folder, index = corpus
    retriever = Retriever(index, RandomEmbedder(), RetrievalSettings(k=5))
    whole_year = Period(date(2025, 1, 1), date(2025, 12, 31), "2025")
    for query in QUERIES:
        unfiltered = {r.chunk.doc_id for r in retriever.search(query, mode="hybrid").chunks}
        for period in (*PERIODS, whole_year):
            found = retriever.search(query, mode="hybrid", period=period).chunks
            assert all(date.fromisoformat(index.documents[r.chunk.doc_id].date) in period for r in found)
        assert "900_undatiert" not in {r.chunk.doc_id for r in retriever.search(query, period=whole_year).chunks}
    assert "900_undatiert" in unfiltered  # it matches every query's words: only the filter keeps it out


def test_a_reader_knows_the_dates_of_articles_added_and_forgets_removed_ones(corpus, tmp_path):
    folder, _ = corpus
    copy = tmp_path / "articles"
    shutil.copytree(folder, copy)
    build_index([copy], tmp_path / "index", RandomEmbedder(), SMALL)
    index = open_index(tmp_path / "index")
    november = PERIODS[3]
    (copy / "905_neu.txt").write_text("date 2025-11-20\n\nDer Dieselpreis fiel im November deutlich.", encoding="utf-8")
    build_index([copy / "905_neu.txt"], tmp_path / "index", RandomEmbedder(), SMALL, add_only=True)
    assert [index.chunks_by_id([i])[i].doc_id for i, _ in index.lexical_search("Dieselpreis", 5, november)] == ["905_neu"]
    remove_documents(tmp_path / "index", ["905_neu"])
    assert index.lexical_search("Dieselpreis", 5, november) == []
    assert index.dense_search(RandomEmbedder().embed(["Dieselpreis"])[0], 5, november) == []
