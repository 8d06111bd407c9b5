"""Store: where the indexed articles, chunks, vectors and lexical statistics live, and the
writer lock. `sqlite/` is the one backend today; a second one goes beside it. Imports text and
models (the embedder that turns new chunks into vectors)."""
