"""Articles from the web and from scrapers: pages, feeds, sitemaps, exports (docs/ingest.md)."""
