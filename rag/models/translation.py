"""Query translation: an English question over German articles is translated by the local model
for lexical search (BM25 cannot match "agreements" to "Abkommen"). Translations are cached on
disk per model, so a repeated question costs nothing.
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

from rag.fileio import atomic_write_json
from rag.models.generation import Generator, model_call
from rag.text.language import LANGUAGE_NAMES

SYSTEM = ("Translate the user's question into {language}. Keep names as they are. "
          "Reply with the translated question only.")


class QueryTranslator:
    def __init__(self, generator: Generator, cache_file: Path | None = None):
        self.generator = generator
        self.cache_file = cache_file
        self._cache: dict[str, dict] | None = None
        self._writing = threading.Lock()  # `rag serve --parallel` translates in several threads

    def _load_cache(self) -> dict[str, dict]:
        if self._cache is None:
            try:
                self._cache = json.loads(self.cache_file.read_text()) if self.cache_file else {}
            except (OSError, ValueError):
                self._cache = {}
        return self._cache

    def translate(self, text: str, target: str) -> str:
        """`text` in the `target` language ("de", "en"); from the cache when it was translated before."""
        return self.translate_timed(text, target)[0]

    def translate_timed(self, text: str, target: str) -> tuple[str, float]:
        """The translation and the seconds the model took for it (recorded, so also for cached ones)."""
        cache = self._load_cache()
        key = f"{self.generator.model_id}|{target}|{text.strip()}"
        if not isinstance(cache.get(key), dict):
            started = time.perf_counter()
            messages = [{"role": "system", "content": SYSTEM.format(language=LANGUAGE_NAMES[target])},
                        {"role": "user", "content": text.strip()}]
            with model_call("question_translation"):
                reply = self.generator.generate(messages, max_tokens=80).text
            translation = re.sub(r"\s+", " ", reply).strip().strip('"') or text
            with self._writing:
                cache[key] = {"text": translation, "seconds": round(time.perf_counter() - started, 3)}
                if self.cache_file:
                    atomic_write_json(self.cache_file, cache)
        return cache[key]["text"], cache[key]["seconds"]
