"""Log lines for people or for machines: `--log-format text` (the default) or `json`, one object a
line, as log shippers (journald, Loki, Elasticsearch) read them.

A JSON line holds the time (UTC, ISO 8601), level, logger and message, and the fields a record
carries (`extra={"fields": {...}}`: a request's id, route, status, seconds, stages, tokens).

>>> record = logging.LogRecord("rag.server", logging.INFO, "", 0, "%s done", ("a1",), None)
>>> record.created, record.fields = 0.0, {"status": 200}
>>> JsonLines().format(record)
'{"time": "1970-01-01T00:00:00.000+00:00", "level": "info", "logger": "rag.server", "message": "a1 done", "status": 200}'
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

FORMATS = ("text", "json")


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                 "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        entry.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(log_format: str, loggers: tuple[str, ...]) -> None:
    """Warnings from everything, and `loggers`' news too (INFO), in `log_format` on stderr."""
    if log_format not in FORMATS:
        raise ValueError(f"the log format must be one of {', '.join(FORMATS)}, not {log_format!r}")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLines() if log_format == "json" else
                         logging.Formatter("%(asctime)s %(message)s", datefmt="%Y-%m-%dT%H:%M:%S"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    for name in loggers:
        logging.getLogger(name).setLevel(logging.INFO)
