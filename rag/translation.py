"""Query translation: an English question over German articles is translated by the local model
for lexical search (BM25 cannot match "agreements" to "Abkommen"). Translations are cached on
disk per model, so a repeated question costs nothing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .fileio import atomic_write_json
from .generation import Generator
from .language import LANGUAGE_NAMES

SYSTEM = ("Translate the user's question into {language}. Keep names as they are. "
          "Reply with the translated question only.")


class QueryTranslator:
    def __init__(self, generator: Generator, cache_file: Path | None = None):
        self.generator = generator
        self.cache_file = cache_file
        self._cache: dict[str, str] | None = None

    def _load_cache(self) -> dict[str, str]:
        if self._cache is None:
            try:
                self._cache = json.loads(self.cache_file.read_text()) if self.cache_file else {}
            except (OSError, ValueError):
                self._cache = {}
        return self._cache

    def translate(self, text: str, target: str) -> str:
        """`text` in the `target` language ("de", "en"); from the cache when it was translated before."""
        cache = self._load_cache()
        key = f"{self.generator.model_id}|{target}|{text.strip()}"
        if key not in cache:
            messages = [{"role": "system", "content": SYSTEM.format(language=LANGUAGE_NAMES[target])},
                        {"role": "user", "content": text.strip()}]
            reply = self.generator.generate(messages, max_tokens=80).text
            cache[key] = re.sub(r"\s+", " ", reply).strip().strip('"') or text
            if self.cache_file:
                atomic_write_json(self.cache_file, cache)
        return cache[key]
