from __future__ import annotations

import json
import logging

from xsell.logs import JsonFormatter, TextFormatter


def _record() -> logging.LogRecord:
    record = logging.makeLogRecord(
        {"name": "xsell.test", "levelno": logging.INFO, "levelname": "INFO", "msg": "stack %s"}
    )
    record.args = ("ready",)
    record.bundle_version = "v7"
    return record


def test_json_log_lines_carry_message_level_and_extra_fields() -> None:
    entry = json.loads(JsonFormatter().format(_record()))
    assert entry["msg"] == "stack ready"
    assert entry["level"] == "info"
    assert entry["logger"] == "xsell.test"
    assert entry["bundle_version"] == "v7"
    assert entry["ts"].endswith("+00:00")


def test_text_log_lines_show_extra_fields_as_key_value() -> None:
    line = TextFormatter().format(_record())
    assert "xsell.test: stack ready" in line
    assert "bundle_version=v7" in line
