"""Structured logs: one JSON line per event, visible in Lambda and in `make run`.

Lambda's runtime leaves the root logger at WARNING, so INFO lines of module loggers that
propagate there vanish. The "thumbgen" logger gets its own handler on stdout (what Lambda
sends to CloudWatch) and does not propagate. Every line carries the function and the
Lambda request id of the invocation it belongs to, so a line can be traced to its
invocation; `event()` adds the fields of one transition (image id, outcome, durations,
attempt). A stdlib formatter, not Powertools' Logger: a few lines instead of a package
of several MB and its import time on every cold start.
"""
from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from typing import Any

ROOT = "thumbgen"
_invocation: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("invocation", default={})
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "fields"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_invocation.get(),
        }
        line.update(getattr(record, "fields", {}) or {})
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def configure(level: str = "INFO", stream: Any = None) -> logging.Logger:
    """Give the thumbgen logger its JSON handler once; later calls only set the level.

    Chalice names its app logger after the app ("thumbgen") and gives it a plain-text
    handler: that one is replaced, so app.log writes JSON lines too."""
    logger = logging.getLogger(ROOT)
    if not any(getattr(h, "_thumbgen", False) for h in logger.handlers):
        for other in list(logger.handlers):
            logger.removeHandler(other)
        handler = logging.StreamHandler(stream or sys.stdout)
        handler.setFormatter(JsonFormatter())
        handler._thumbgen = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level)
    return logger


def bind_invocation(function: str, request_id: str | None) -> contextvars.Token:
    """Fields every line of this invocation carries."""
    return _invocation.set({"function": function, "requestId": request_id or "-"})


def unbind(token: contextvars.Token) -> None:
    _invocation.reset(token)


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: Any) -> None:
    """One transition as one line: logs.event(log, "resize.finished", imageId=…, outcome=…)."""
    logger.log(level, name, extra={"fields": {k: v for k, v in fields.items() if v is not None}})


def get(name: str) -> logging.Logger:
    """A logger under thumbgen, so its lines go through the JSON handler."""
    return logging.getLogger(f"{ROOT}.{name}" if name != ROOT else ROOT)
