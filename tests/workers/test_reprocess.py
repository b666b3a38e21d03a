"""Reprocessing stored calls: the diff report against an independently computed expectation, stop and
resume, reviewed tickets kept, selection filters, the CLI on the archive queue with a real worker, the
admin API."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import bearer, create_api_keys
from fastapi.testclient import TestClient
from ops_support import (  # noqa: F401  (fixtures)
    add_transcribed_call,
    factory_fixture,
    make_transcript,
    ops_env,
    ops_settings_fixture,
    run_cli,
    start_worker,
    stop,
)
from sqlalchemy import func, select

from api.app import create_app
from pipeline import reprocess
from pipeline.extractors import extract_ticket, load_rules, rules_version
from pipeline.extractors.rules import RULES_DIR
from pipeline.settings import Settings
from pipeline.storage import repo
from pipeline.storage.calls import CallStatus
from pipeline.storage.db import session_scope
from pipeline.storage.reprocess import ItemStatus, ReprocessChangeRow, ReprocessItemRow, RunStatus
from pipeline.storage.tickets import TicketRow
from pipeline.ticket import TicketStatus

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def old_rules(tmp_path_factory: pytest.TempPathFactory):
    """An older version of the rules: other due-time limits, and a gas-leak cue it did not know yet."""
    directory = tmp_path_factory.mktemp("old-rules")
    shutil.copytree(RULES_DIR, directory, dirs_exist_ok=True)
    urgency = directory / "urgency.yaml"
    text = urgency.read_text(encoding="utf-8")
    for old, new in (("  urgent: 24\n", "  urgent: 48\n"), ("  normal: 168\n", "  normal: 240\n"),
                     ("  漏气: 3\n", "")):
        assert old in text
        text = text.replace(old, new, 1)
    text = text.replace('version: "', 'version: "2025.01.1-was-', 1)
    urgency.write_text(text, encoding="utf-8")
    rules = load_rules(directory)
    assert rules_version(rules) != rules_version(load_rules())
    return rules


def _seed(factory, old_rules, count: int, *, zone: str = "Asia/Shanghai", status=TicketStatus.NEEDS_REVIEW,
          first: int = 0) -> dict[str, dict]:
    """Calls with transcripts and tickets drafted by the old rules; returns what the rules change per call:
    ``{call_id: {field: (old, new)}}``, computed here from the drafts themselves."""
    expected: dict[str, dict] = {}
    current = load_rules()
    for i in range(first, first + count):
        call_id = add_transcribed_call(factory, i, status=CallStatus.NEEDS_REVIEW)
        transcript = make_transcript(i)
        with session_scope(factory) as session:
            call = repo.get_call(session, call_id=call_id)
            received = call.received_at.astimezone(ZoneInfo(zone))
            old = extract_ticket(transcript, received_at=received, rules=old_rules)
            row = repo.save_ticket(session, call_id=call_id, draft=old,
                                   transcript_id=repo.find_current_transcript(session, call_id=call_id).id)
            row.status = status
        new = extract_ticket(transcript, received_at=received, rules=current)
        before, after = old.to_dict(), new.to_dict()
        expected[call_id] = {name: (before[name], after[name]) for name in reprocess.DIFF_FIELDS
                             if before[name] != after[name]}
    return expected


def _report_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_re_extraction_reports_exactly_what_the_new_rules_changed(ops_settings: Settings, factory, old_rules,
                                                                  tmp_path: Path) -> None:
    expected = _seed(factory, old_rules, 30)
    assert sum(bool(v) for v in expected.values()) >= 10  # the rules change really changes tickets

    run = reprocess.start_run(ops_settings, session_factory=factory, stage="extract")
    assert (run.total, run.status, run.rules_version) == (30, RunStatus.RUNNING, rules_version(load_rules()))
    seen: list[int] = []
    run = reprocess.run_inline(ops_settings, session_factory=factory, run_id=run.id, batch_size=7,
                               on_progress=lambda p: seen.append(p.done))
    assert seen == [7, 14, 21, 28, 30]
    assert (run.status, run.done, run.failed, run.skipped) == (RunStatus.DONE, 30, 0, 0)
    assert run.changed == sum(bool(v) for v in expected.values())
    assert run.rate_per_s and run.eta_s == 0.0

    csv_path, json_path = reprocess.write_report(ops_settings, session_factory=factory, run_id=run.id,
                                                 directory=tmp_path / "reports")
    report = json.loads(json_path.read_text(encoding="utf-8"))
    got = {(c["call_id"], c["field"]): (c["old_value"], c["new_value"]) for c in report["changes"]}
    want = {(call_id, name): pair for call_id, fields in expected.items() for name, pair in fields.items()}
    assert got == want and len(report["changes"]) == len(want)
    assert all(c["applied"] for c in report["changes"]) and report["failed"] == []
    assert report["run"]["id"] == run.id and report["run"]["status"] == "done"
    rows = _report_rows(csv_path)
    assert list(rows[0]) == list(reprocess.CSV_HEADER) and len(rows) == len(want)
    for row in rows:
        old, new = want[(row["call_id"], row["field"])]
        assert row["old_value"] == reprocess.csv_cell(old) and row["new_value"] == reprocess.csv_cell(new)

    with session_scope(factory) as session:
        for call_id in expected:
            tickets = session.scalars(select(TicketRow).where(TicketRow.call_id == call_id)).all()
            assert sorted(t.rules_version for t in tickets) == sorted([rules_version(old_rules), run.rules_version])
            assert repo.find_current_ticket(session, call_id=call_id).rules_version == run.rules_version


def test_a_reviewed_ticket_is_kept_and_its_changes_reported_as_not_applied(ops_settings: Settings, factory,
                                                                           old_rules) -> None:
    pending = _seed(factory, old_rules, 3)
    approved = _seed(factory, old_rules, 3, status=TicketStatus.APPROVED, first=3)
    run = reprocess.start_run(ops_settings, session_factory=factory)
    run = reprocess.run_inline(ops_settings, session_factory=factory, run_id=run.id)
    assert run.done == 6 and run.status is RunStatus.DONE
    changes = list(reprocess.iter_changes(factory, run_id=run.id))
    for change in changes:
        assert change["applied"] is (change["call_id"] in pending)
    assert {c["call_id"] for c in changes if not c["applied"]} == {c for c, v in approved.items() if v}
    with session_scope(factory) as session:
        for call_id in approved:
            assert session.scalar(select(func.count()).select_from(TicketRow)
                                  .where(TicketRow.call_id == call_id)) == 1
            item = session.get(ReprocessItemRow, (run.id, call_id))
            assert item.status is ItemStatus.DONE and item.outcome.startswith("kept the approved ticket")


def test_stopped_and_resumed_run_redoes_no_call(ops_settings: Settings, factory, old_rules) -> None:
    expected = _seed(factory, old_rules, 20)
    run = reprocess.start_run(ops_settings, session_factory=factory)
    batches = reprocess.pending_batches(factory, run_id=run.id, batch_size=5)
    assert [len(b) for b in batches] == [5, 5, 5, 5]
    first = reprocess.process_batch(ops_settings, session_factory=factory, run_id=run.id, pass_no=1,
                                    call_ids=batches[0])
    assert first.done == 5
    again = reprocess.process_batch(ops_settings, session_factory=factory, run_id=run.id, pass_no=1,
                                    call_ids=batches[0])
    assert again.done == 0 and again.stood_down is None  # a batch run twice finds its items done

    assert reprocess.stop_run(factory, run_id=run.id).status is RunStatus.STOPPED
    stood = reprocess.process_batch(ops_settings, session_factory=factory, run_id=run.id, pass_no=1,
                                    call_ids=batches[1])
    assert stood.stood_down == "run is stopped" and stood.done == 0
    resumed = reprocess.resume_run(factory, run_id=run.id)
    assert (resumed.status, resumed.passes, resumed.done) == (RunStatus.RUNNING, 2, 5)
    late = reprocess.process_batch(ops_settings, session_factory=factory, run_id=run.id, pass_no=1,
                                   call_ids=batches[1])
    assert late.stood_down and "pass 2" in late.stood_down  # a batch of the old pass still in a queue
    assert [len(b) for b in reprocess.pending_batches(factory, run_id=run.id, batch_size=100)] == [15]

    done = reprocess.run_inline(ops_settings, session_factory=factory, run_id=run.id, batch_size=4)
    assert (done.status, done.done, done.total) == (RunStatus.DONE, 20, 20)
    with session_scope(factory) as session:
        per_field = session.execute(
            select(ReprocessChangeRow.call_id, ReprocessChangeRow.field, func.count())
            .where(ReprocessChangeRow.run_id == run.id)
            .group_by(ReprocessChangeRow.call_id, ReprocessChangeRow.field)
        ).all()
        assert all(n == 1 for _, _, n in per_field)
        assert len(per_field) == sum(len(v) for v in expected.values())
        for call_id in expected:
            assert session.scalar(select(func.count()).select_from(TicketRow).where(
                TicketRow.call_id == call_id, TicketRow.rules_version == run.rules_version)) == 1
    with pytest.raises(Exception, match="already done"):
        reprocess.resume_run(factory, run_id=run.id)
    # a second run with the same rules finds every ticket already drafted
    second = reprocess.run_inline(ops_settings, session_factory=factory,
                                  run_id=reprocess.start_run(ops_settings, session_factory=factory).id)
    assert (second.done, second.skipped, second.changed) == (20, 20, 0)


def test_selection_by_time_call_and_current_ticket(ops_settings: Settings, factory, old_rules) -> None:
    base = datetime(2026, 5, 1, 0, 0, tzinfo=UTC)
    ids = [add_transcribed_call(factory, i, received_at=base + timedelta(days=i), line=f"L{i % 2}",
                                status=CallStatus.NEEDS_REVIEW) for i in range(6)]
    add_transcribed_call(factory, 6, received_at=base, status=CallStatus.PROCESSING)  # in flight: never taken
    current = load_rules()
    with session_scope(factory) as session:
        for i, call_id in enumerate(ids):
            call = repo.get_call(session, call_id=call_id)
            draft = extract_ticket(make_transcript(i), received_at=call.received_at, rules=old_rules)
            repo.save_ticket(session, call_id=call_id, draft=draft)
        categories = {cid: repo.find_current_ticket(session, call_id=cid).category for cid in ids}

    def picked(**kwargs) -> list[str]:
        with session_scope(factory) as session:
            return list(session.scalars(reprocess.select_calls("extract", reprocess.Selection(**kwargs))))

    assert picked() == ids
    assert picked(since=base + timedelta(days=2), until=base + timedelta(days=4)) == ids[2:4]
    assert picked(where={"line": "L1"}) == ids[1::2]
    group = categories[ids[0]].split(".")[0] + "."
    assert picked(where={"category": group}) == [c for c in ids if categories[c].startswith(group)]
    assert picked(where={"category": categories[ids[1]], "line": "L1"}) == [
        c for c in ids[1::2] if categories[c] == categories[ids[1]]]
    assert picked(where={"ticket_status": "approved"}) == []
    with pytest.raises(ValueError, match="unknown filter"):
        reprocess.Selection(where={"colour": "red"})
    with pytest.raises(ValueError):
        reprocess.parse_where(["category"])
    assert rules_version(current) != rules_version(old_rules)


@pytest.mark.model
def test_cli_on_the_archive_queue_with_a_real_worker_writes_the_report(ops_settings: Settings, factory, old_rules,
                                                                       model_cache_dir: Path, tmp_path: Path) -> None:
    expected = _seed(factory, old_rules, 25)
    env = ops_env(ops_settings, model_cache_dir)
    worker = start_worker(env, tmp_path, "--queues", "archive")
    try:
        done = run_cli(env, tmp_path, "reprocess", "--batch-size", "4", "--json", "--report-dir",
                       str(tmp_path / "reports"), timeout=600)
    finally:
        stop(worker)
    assert done.returncode == 0, done.stderr[-3000:] + (tmp_path / "worker.log").read_text()[-3000:]
    run = json.loads(done.stdout.strip().splitlines()[-1])
    assert (run["status"], run["done"], run["mode"], run["failed"]) == ("done", 25, "queue", 0)
    assert "calls/s" in done.stderr and "ETA" in done.stderr  # the progress line
    rows = _report_rows(Path(run["report"][0]))
    assert {(r["call_id"], r["field"]) for r in rows} == {
        (call_id, name) for call_id, fields in expected.items() for name in fields}
    status = run_cli(env, tmp_path, "reprocess", "--status", run["id"], "--json")
    assert json.loads(status.stdout)["done"] == 25


@pytest.fixture
def admin_client(ops_settings: Settings) -> Iterator[tuple[TestClient, dict[str, str]]]:
    inline = ops_settings.model_copy(update={"queue_mode": "inline"})
    keys = create_api_keys(inline)
    with TestClient(create_app(inline), headers=bearer(keys["supervisor"])) as client:
        yield client, keys


def test_admin_api_starts_reports_and_is_for_supervisors(admin_client, factory, old_rules) -> None:
    client, keys = admin_client
    expected = _seed(factory, old_rules, 8)
    assert client.post("/admin/reprocess", json={}, headers=bearer(keys["operator"])).status_code == 403
    assert client.get("/admin/reprocess", headers={"Authorization": ""}).status_code == 401
    bad = client.post("/admin/reprocess", json={"where": {"colour": "red"}})
    assert bad.status_code == 422 and "unknown filter" in bad.text
    assert client.post("/admin/reprocess", json={"since": "2026-02-01", "until": "2026-01-01"}).status_code == 422
    assert client.get("/admin/reprocess/0123456789abcdef").status_code == 404

    started = client.post("/admin/reprocess", json={"stage": "extract", "since": "2026-03-01T00:00:00",
                                                     "batch_size": 3})
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    assert started.json()["total"] == 8 and started.json()["created_by"]
    progress = client.get(f"/admin/reprocess/{run_id}").json()  # inline: ran in the background already
    assert (progress["status"], progress["done"], progress["failed"]) == ("done", 8, 0)
    assert progress["changed"] == sum(bool(v) for v in expected.values())
    assert [r["id"] for r in client.get("/admin/reprocess").json()["items"]] == [run_id]

    report = client.get(f"/admin/reprocess/{run_id}/report").json()
    assert {(c["call_id"], c["field"], json.dumps(c["old_value"]), json.dumps(c["new_value"]))
            for c in report["changes"]} == {
        (cid, name, json.dumps(old), json.dumps(new)) for cid, fields in expected.items()
        for name, (old, new) in fields.items()}
    as_csv = client.get(f"/admin/reprocess/{run_id}/report", params={"format": "csv"})
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    assert len(list(csv.DictReader(as_csv.text.splitlines()))) == len(report["changes"])
    assert client.post(f"/admin/reprocess/{run_id}/resume").status_code == 409
    assert client.post(f"/admin/reprocess/{run_id}/stop").json()["status"] == "done"
    assert client.post("/admin/reconcile").status_code == 409  # inline: no queue to reconcile


def test_admin_api_in_queue_mode_puts_batches_on_the_archive_queue(ops_settings: Settings, factory,
                                                                   old_rules) -> None:
    import redis

    _seed(factory, old_rules, 7)
    keys = create_api_keys(ops_settings)
    with TestClient(create_app(ops_settings), headers=bearer(keys["supervisor"])) as client:
        started = client.post("/admin/reprocess", json={"batch_size": 3})
        assert started.status_code == 202 and started.json()["mode"] == "queue"
        conn = redis.Redis.from_url(ops_settings.redis_url)
        assert conn.llen("rq:queue:archive") == 3
        stopped = client.post(f"/admin/reprocess/{started.json()['id']}/stop").json()
        assert stopped["status"] == "stopped"
        resumed = client.post(f"/admin/reprocess/{started.json()['id']}/resume")
        assert resumed.status_code == 202 and resumed.json()["passes"] == 2
        assert conn.llen("rq:queue:archive") == 4  # the new pass in one batch; the old ones will stand down
        assert client.post("/admin/reconcile", params={"grace_s": 0}).json()["checked"] == 0


@pytest.mark.model
def test_transcribe_stage_runs_the_model_again_inline(ops_settings: Settings, factory, sample_calls,
                                                      model_cache_dir: Path, tmp_path: Path) -> None:
    if "postgres" in ops_settings.resolved_database_url:
        pytest.skip("one database is enough for a model run")
    env = ops_env(ops_settings, model_cache_dir, CALLINTAKE_QUEUE_MODE="inline")
    sample = next(p for p in sample_calls if p.name.startswith("en_01"))
    processed = run_cli(env, tmp_path, "process", "--json", str(sample))
    assert processed.returncode == 0, processed.stderr[-2000:]
    call_id = json.loads(processed.stdout)["call_id"]
    done = run_cli(env, tmp_path, "reprocess", "--stage", "transcribe", "--inline", "--json")
    assert done.returncode == 0, done.stderr[-3000:]
    run = json.loads(done.stdout.strip().splitlines()[-1])
    assert (run["status"], run["stage"], run["done"], run["failed"]) == ("done", "transcribe", 1, 0)
    with session_scope(factory) as session:
        assert len(repo.get_call(session, call_id=call_id).transcripts) == 2
        assert repo.get_call(session, call_id=call_id).status is CallStatus.NEEDS_REVIEW
        item = session.get(ReprocessItemRow, (run["id"], call_id))
        assert item.status is ItemStatus.DONE
