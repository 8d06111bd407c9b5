"""Text: reading and cleaning articles, sentences and chunks, language, the German analyzer,
numbers and source markers. Plain Python over strings; imports nothing else of rag's but the
shared ground (errors, fileio)."""
