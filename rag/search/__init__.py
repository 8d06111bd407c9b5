"""Search: dense, lexical and fused retrieval over a store. Imports store, models and text."""
