"""Structured logs: JSON lines that Lambda's WARNING root logger cannot swallow."""
from __future__ import annotations

import io
import json
import logging

from chalicelib.platform import logs


def test_info_lines_survive_a_warning_root_logger_as_one_json_object_each(monkeypatch):
    logging.getLogger().setLevel(logging.WARNING)  # what Lambda's runtime leaves
    stream = io.StringIO()
    monkeypatch.setattr(logging.getLogger(logs.ROOT), "handlers", [])
    logs.configure("INFO", stream=stream)
    token = logs.bind_invocation("resize_upload", "req-123")
    try:
        logs.event(logs.get("processing"), "resize.finished", imageId="img-1", outcome="completed",
                   durationMs=42, attempt=1, code=None)
    finally:
        logs.unbind(token)
    [line] = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["message"] == "resize.finished" and record["level"] == "INFO"
    assert record["function"] == "resize_upload" and record["requestId"] == "req-123"
    assert (record["imageId"], record["outcome"], record["durationMs"], record["attempt"]) == ("img-1", "completed", 42, 1)
    assert "code" not in record  # empty fields are left out


def test_chalices_plain_text_handler_is_replaced(monkeypatch):
    logger = logging.getLogger(logs.ROOT)
    plain = logging.StreamHandler(io.StringIO())
    monkeypatch.setattr(logger, "handlers", [plain])
    stream = io.StringIO()
    logs.configure("INFO", stream=stream)
    assert plain not in logger.handlers and len(logger.handlers) == 1
    logger.info("hello")
    assert json.loads(stream.getvalue())["message"] == "hello"


def test_the_sweepers_metric_is_embedded_metric_format():
    from chalicelib.resize.sweeper import metric_line

    line = metric_line("prod", 3, 1767312000000)
    [directive] = line["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "thumbgen" and directive["Dimensions"] == [["Stage"]]
    assert [m["Name"] for m in directive["Metrics"]] == ["StuckImages"]
    assert line["Stage"] == "prod" and line["StuckImages"] == 3
