"""Structured logs: every line about a call names it, in text or as JSON."""

from __future__ import annotations

import io
import json
import logging
import threading

import pytest

from pipeline.logs import configure_logging, current_context, log_context


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_the_call_id_only_inside_its_context(restore_logging) -> None:
    out = io.StringIO()
    configure_logging("json", level=logging.INFO, stream=out)
    log = logging.getLogger("pipeline.test")
    log.info("before")
    with log_context(call_id="3f2a9c0d5e6b7a81", job_id="intake-3f2a9c0d5e6b7a81-abc"):
        log.info("call %s: transcribed", "3f2a9c0d5e6b7a81")
        with log_context(run_id="r1"):
            try:
                raise ValueError("bad rule")
            except ValueError:
                log.exception("extraction failed")
    log.warning("after")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["message"] for line in lines] == ["before", "call 3f2a9c0d5e6b7a81: transcribed",
                                                   "extraction failed", "after"]
    assert "call_id" not in lines[0] and "call_id" not in lines[3]
    assert lines[1]["call_id"] == "3f2a9c0d5e6b7a81" and lines[1]["job_id"].startswith("intake-")
    assert lines[2]["run_id"] == "r1" and lines[2]["call_id"] == "3f2a9c0d5e6b7a81"
    assert "ValueError: bad rule" in lines[2]["exc"] and lines[2]["level"] == "ERROR"
    assert lines[1]["ts"].endswith("Z") and lines[1]["logger"] == "pipeline.test"
    assert current_context() == {}


def test_text_lines_name_the_call_and_threads_keep_their_own(restore_logging) -> None:
    out = io.StringIO()
    configure_logging("text", level=logging.INFO, stream=out)
    configure_logging("text", level=logging.INFO, stream=out)  # configured twice: still one line each
    log = logging.getLogger("workers.test")

    def work(call_id: str) -> None:
        with log_context(call_id=call_id):
            log.info("working")

    threads = [threading.Thread(target=work, args=(f"call{i:012d}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = out.getvalue().splitlines()
    assert len(lines) == 4
    assert sorted(line.split("[call ")[1].split("]")[0] for line in lines) == [f"call{i:012d}" for i in range(4)]


def test_bad_format_and_fields_are_refused() -> None:
    with pytest.raises(ValueError):
        configure_logging("xml")
    with pytest.raises(ValueError), log_context(colour="red"):
        pass
