"""HNSW recall and latency against exact search in pgvector, by ef_search, on random and on
clustered unit vectors (384 dimensions), in a scratch table public.hnsw_probe (dropped after).

    python docs/bench/hnsw_recall.py 100000 postgresql://user@host/db
"""
import sys, time, json
import numpy as np, psycopg
url = sys.argv[2]
N, D, Q = int(sys.argv[1]), 384, 200
rng = np.random.default_rng(0)
def unit(x): return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
kinds = {"random": lambda n: unit(rng.standard_normal((n, D))),
         # topics: each vector near one of N/100 centres (cosine ~0.8 to it), as chunks of one story are
         "clustered": None}
centres = unit(rng.standard_normal((N // 100, D)))
def clustered(n):
    c = centres[rng.integers(0, len(centres), n)]
    return unit(c + 0.5 * unit(rng.standard_normal((n, D))))
kinds["clustered"] = clustered
out = {}
with psycopg.connect(url, autocommit=True) as conn:
    for kind, make in kinds.items():
        conn.execute("DROP TABLE IF EXISTS public.hnsw_probe")
        conn.execute(f"CREATE TABLE public.hnsw_probe(id bigint primary key, v vector({D}))")
        data = make(N)
        with conn.cursor().copy("COPY public.hnsw_probe(id, v) FROM STDIN") as copy:
            for i, v in enumerate(data):
                copy.write_row((i, "[" + ",".join(map(str, v.tolist())) + "]"))
        queries = make(Q)
        conn.execute("SET maintenance_work_mem = '1GB'")
        t = time.perf_counter()
        conn.execute("CREATE INDEX ON public.hnsw_probe USING hnsw (v vector_ip_ops) WITH (m = 16, ef_construction = 64)")
        build = time.perf_counter() - t
        truth = [set(int(i) for i in np.argsort(-(data @ q))[:10]) for q in queries]
        rows = {"build_seconds": round(build, 1)}
        for ef in (40, 100, 200, 400):
            conn.execute(f"SET hnsw.ef_search = {ef}")
            found, ms = [], []
            for q, tr in zip(queries, truth):
                lit = "[" + ",".join(map(str, q.tolist())) + "]"
                t = time.perf_counter()
                got = conn.execute("SELECT id FROM public.hnsw_probe ORDER BY v <#> %s::vector LIMIT 10", (lit,)).fetchall()
                ms.append((time.perf_counter() - t) * 1000)
                found.append(len(tr & {r[0] for r in got}) / 10)
            rows[f"ef_search {ef}"] = {"recall@10": round(float(np.mean(found)), 3), "p50_ms": round(float(np.percentile(ms, 50)), 1), "p95_ms": round(float(np.percentile(ms, 95)), 1)}
        out[kind] = rows
        print(kind, json.dumps(rows), flush=True)
    conn.execute("DROP TABLE IF EXISTS public.hnsw_probe")
