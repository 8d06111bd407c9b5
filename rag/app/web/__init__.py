"""The browser page `rag serve` serves at `/`: plain HTML, CSS and JavaScript modules, no build
step (docs/page.md). Package data only: nothing here is imported."""
