"""The index operations of rag before index format 2 (commit 26c39bb), measured as `rag bench index`
measures them today: the same articles (five XQuAD paragraphs each), random unit vectors.

    git worktree add /tmp/old 26c39bb
    python docs/bench/index_format1.py 1000,10000,100000      # one JSON line per size

Format 1 has no --add and no remove: adding or removing one article is `rag index` of the folder
with one file more or less, which re-reads every file and rewrites every JSON file.
"""
import sys, json, time, statistics, subprocess, tempfile, hashlib, os
OLD = os.environ.get("RAG_OLD_CHECKOUT", "/tmp/old")
XQUAD = os.environ.get("RAG_XQUAD", str(__import__("pathlib").Path(__file__).resolve().parents[3] / "shared/data/xquad-dev"))
sys.path.insert(0, OLD)
from pathlib import Path
import numpy as np
from rag.chunking import ChunkerSettings
from rag.embedding import Embedder
from rag.index import build_index, open_index
from rag.retrieval import Retriever, RetrievalSettings
from rag.bench import load_xquad

class RandomEmbedder(Embedder):
    model_id = "random-unit-vectors@384"; dimension = 384; max_tokens = 512
    def embed(self, texts):
        rows = [np.random.default_rng(int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")).standard_normal(384) for t in texts]
        v = np.asarray(rows, dtype=np.float32).reshape(len(texts), 384)
        return v / np.linalg.norm(v, axis=1, keepdims=True).clip(1e-9)

def article(paragraphs, number):
    picked = [paragraphs[(number * 5 + j) % len(paragraphs)] for j in range(5)]
    return "\n\n".join(f"{p} Archivnummer {number}-{j}." for j, p in enumerate(picked))

def rss():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"): return int(line.split()[1]) * 1024

if sys.argv[1] == "probe":
    import faiss
    idx = Path(sys.argv[2]); questions = json.loads(Path(sys.argv[3]).read_text())
    e = RandomEmbedder(); e.embed(["warm"])
    before = rss(); t = time.perf_counter(); index = open_index(idx, e.model_id); open_s = time.perf_counter() - t
    resident = rss() - before
    r = Retriever(index, e, RetrievalSettings(k=5))
    lat = {"dense": [], "lexical": [], "hybrid": []}
    for q in (questions * 10)[:200]:
        v = e.embed([q])
        for mode, run in (("dense", lambda: index.dense.search(v, 50)), ("lexical", lambda: index.lexical.search(q, 50)), ("hybrid", lambda: r.search(q))):
            t = time.perf_counter(); run(); lat[mode].append((time.perf_counter() - t) * 1000)
    print(json.dumps({"chunks": len(index.chunks), "open_seconds": open_s, "resident_bytes": resident,
                      "query_ms": {m: {"p50": float(np.percentile(v, 50)), "p95": float(np.percentile(v, 95))} for m, v in lat.items()}}))
    sys.exit()

data = load_xquad(Path(XQUAD))
paragraphs = list(data.paragraphs.values()); questions = [q.question["de"] for q in data.questions]
rows = []
for size in [int(s) for s in sys.argv[1].split(",")]:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp); folder = tmp / "articles"; folder.mkdir(); idx = tmp / "index"
        n = round(size / 4.95)
        for i in range(n): (folder / f"a{i:07d}.txt").write_text(article(paragraphs, i))
        e = RandomEmbedder(); st = ChunkerSettings()
        t = time.perf_counter(); rep = build_index([folder], idx, e, st); build = time.perf_counter() - t
        add, rem = [], []
        for k in range(3 if size < 50000 else 1):
            (folder / f"a{n + 1 + k:07d}.txt").write_text(article(paragraphs, n + 1 + k))
            t = time.perf_counter(); build_index([folder], idx, e, st); add.append(time.perf_counter() - t)
            (folder / f"a{k:07d}.txt").unlink()
            t = time.perf_counter(); build_index([folder], idx, e, st); rem.append(time.perf_counter() - t)
        qf = tmp / "q.json"; qf.write_text(json.dumps(questions))
        probe = json.loads(subprocess.run([sys.executable, __file__, "probe", str(idx), str(qf)], capture_output=True, text=True, check=True).stdout)
        disk = sum(p.stat().st_size for p in idx.rglob("*") if p.is_file())
        row = {"chunks": probe["chunks"], "build_seconds": build, "add_one_seconds": statistics.median(add),
               "remove_one_seconds": statistics.median(rem), "open_seconds": probe["open_seconds"],
               "query_ms": probe["query_ms"], "disk_bytes": disk, "resident_bytes": probe["resident_bytes"],
               "resident_per_vector_byte": probe["resident_bytes"] / (probe["chunks"] * 384 * 4)}
        print(json.dumps(row), flush=True); rows.append(row)
