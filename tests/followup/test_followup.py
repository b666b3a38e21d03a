"""The callback loop (回访) on real databases: outcomes, ratings, and the per-department figures, through
the service and through the API with real keys."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from support.tickets import make_ticket

from api.app import create_app
from pipeline import followup
from pipeline.errors import Conflict
from pipeline.settings import Settings
from pipeline.storage.db import make_engine, make_session_factory, session_scope
from pipeline.storage.dispatch import Rating
from pipeline.ticket import TicketStatus

NOW = datetime.now(UTC).replace(microsecond=0)
#: ten days ago at 09:00 in Beijing: every test time below lies between it and now
RECEIVED = datetime.combine((NOW - timedelta(days=10)).astimezone(ZoneInfo("Asia/Shanghai")).date(),
                            datetime.min.time(), ZoneInfo("Asia/Shanghai")).replace(hour=9)
SHANGHAI_DAY = RECEIVED.date()


@pytest.fixture
def factory(settings: Settings):
    engine = make_engine(settings)
    yield make_session_factory(engine)
    engine.dispose()


def _ticket(settings, factory, tmp_path, seed, **kw) -> str:
    kw.setdefault("received_at", RECEIVED)
    return make_ticket(settings, factory, tmp_path, seed=seed, **kw)[1]


def test_outcome_and_rating_are_kept_with_the_first_report_time(settings: Settings, factory, tmp_path: Path) -> None:
    tid = _ticket(settings, factory, tmp_path, 1)
    first = RECEIVED + timedelta(hours=20)
    with session_scope(factory) as session:
        followup.record_outcome(session, ticket_id=tid, resolved=False, note="已派人查看，需更换阀门",
                                reported_at=first, by="operator 1")
    with session_scope(factory) as session:
        followup.record_outcome(session, ticket_id=tid, resolved=True, note="  阀门已更换，暖气恢复  ",
                                reported_at=RECEIVED + timedelta(days=3), by="operator 2")
        row = followup.record_rating(session, ticket_id=tid, rating="基本满意", note="修得慢了点", by="operator 2")
    with session_scope(factory) as session:
        row = followup.get_followup(session, ticket_id=tid)
        assert (row.resolved, row.outcome_note, row.outcome_by) == (True, "阀门已更换，暖气恢复", "operator 2")
        assert row.first_outcome_at == first and row.outcome_at == RECEIVED + timedelta(days=3)
        assert row.rating is Rating.BASICALLY_SATISFIED and followup.RATING_LABELS[row.rating] == "基本满意"
        assert abs((row.rated_at - datetime.now(UTC)).total_seconds()) < 60


def test_followups_only_for_approved_tickets_and_sensible_times(settings: Settings, factory, tmp_path: Path) -> None:
    draft = _ticket(settings, factory, tmp_path, 1, status=TicketStatus.NEEDS_REVIEW)
    tid = _ticket(settings, factory, tmp_path, 2, status=TicketStatus.DISPATCHED)
    with session_scope(factory) as session:
        with pytest.raises(Conflict, match="needs_review"):
            followup.record_outcome(session, ticket_id=draft, resolved=True)
        with pytest.raises(Conflict, match="before the call came in"):
            followup.record_outcome(session, ticket_id=tid, resolved=True, reported_at=RECEIVED - timedelta(hours=1))
        with pytest.raises(Conflict, match="in the future"):
            followup.record_rating(session, ticket_id=tid, rating="satisfied", rated_at=NOW + timedelta(days=1))
        with pytest.raises(ValueError, match="unknown rating"):
            followup.record_rating(session, ticket_id=tid, rating="还行")
    with session_scope(factory) as session:
        assert followup.get_followup(session, ticket_id=tid) is None  # nothing half-recorded


def test_department_figures_in_a_date_range(settings: Settings, factory, tmp_path: Path) -> None:
    heat, water = "朝阳区城市管理委员会", "北京市自来水集团"
    a = _ticket(settings, factory, tmp_path, 1, department=heat)           # answered in time, resolved, 满意
    b = _ticket(settings, factory, tmp_path, 2, department=heat)           # answered late, not resolved, 不满意
    _ticket(settings, factory, tmp_path, 3, department=heat)               # no answer, no rating
    d = _ticket(settings, factory, tmp_path, 4, department=water, urgency="emergency",
                due_in=timedelta(hours=2))                                 # answered in time, resolved, 基本满意
    rejected = _ticket(settings, factory, tmp_path, 5, department=heat, status=TicketStatus.REJECTED)
    earlier = _ticket(settings, factory, tmp_path, 6, department=heat, received_at=RECEIVED - timedelta(days=3))
    with session_scope(factory) as session:
        followup.record_outcome(session, ticket_id=a, resolved=True, reported_at=RECEIVED + timedelta(hours=23))
        followup.record_rating(session, ticket_id=a, rating=Rating.SATISFIED)
        followup.record_outcome(session, ticket_id=b, resolved=False, reported_at=RECEIVED + timedelta(hours=25))
        followup.record_rating(session, ticket_id=b, rating="不满意")
        followup.record_outcome(session, ticket_id=d, resolved=True, reported_at=RECEIVED + timedelta(minutes=90))
        followup.record_rating(session, ticket_id=d, rating="basically_satisfied")
        followup.record_outcome(session, ticket_id=earlier, resolved=True,
                                reported_at=RECEIVED - timedelta(days=3, hours=-1))
    assert rejected

    start, end = followup.date_range(SHANGHAI_DAY, SHANGHAI_DAY, "Asia/Shanghai")
    with session_scope(factory) as session:
        stats = {s.department: s for s in followup.department_stats(session, start=start, end=end)}
    assert set(stats) == {heat, water}
    h, w = stats[heat], stats[water]
    assert (h.tickets, h.responded, h.resolved, h.rated, h.satisfied, h.dissatisfied) == (3, 1, 1, 2, 1, 1)
    assert (h.response_rate, h.resolution_rate, h.satisfaction_rate) == (0.3333, 0.3333, 0.5)
    assert (w.tickets, w.response_rate, w.resolution_rate, w.satisfaction_rate) == (1, 1.0, 1.0, 1.0)
    total = followup.total_stats(list(stats.values()))
    assert (total.tickets, total.satisfaction_rate) == (4, round(2 / 3, 4))

    start, end = followup.date_range(SHANGHAI_DAY - timedelta(days=3), SHANGHAI_DAY, "Asia/Shanghai")
    with session_scope(factory) as session:
        wider = {s.department: s for s in followup.department_stats(session, start=start, end=end)}
    assert (wider[heat].tickets, wider[heat].responded) == (4, 2)
    start, end = followup.date_range(date(2001, 1, 1), date(2001, 1, 31), "Asia/Shanghai")
    with session_scope(factory) as session:
        assert followup.department_stats(session, start=start, end=end) == []


# --------------------------------------------------------------------------------------------- the API
@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def test_api_records_outcome_and_rating_for_operators(settings: Settings, factory, client: TestClient,
                                                       auth: dict[str, dict[str, str]], tmp_path: Path) -> None:
    tid = _ticket(settings, factory, tmp_path, 1)
    url = f"/tickets/{tid}"
    naive_local = (RECEIVED + timedelta(hours=5)).replace(tzinfo=None).isoformat()

    assert client.post(f"{url}/outcome", json={"resolved": True}).status_code == 401
    assert client.post(f"{url}/outcome", json={"resolved": True}, headers=auth["uploader"]).status_code == 403
    got = client.post(f"{url}/outcome", headers=auth["operator"],
                      json={"resolved": True, "note": "已处理", "reported_at": naive_local})
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["resolved"] is True and body["responded_in_time"] is True and body["outcome_by"] == "test operator"
    assert datetime.fromisoformat(body["first_outcome_at"]) == RECEIVED + timedelta(hours=5)  # read in Beijing time

    rated = client.post(f"{url}/rating", headers=auth["operator"], json={"rating": "满意", "note": "很快"})
    assert rated.status_code == 200 and (rated.json()["rating"], rated.json()["rating_label"]) == ("satisfied", "满意")
    bad = client.post(f"{url}/rating", headers=auth["operator"], json={"rating": "very good"})
    assert bad.status_code == 422 and "unknown rating" in bad.json()["error"]["message"]
    late = client.post(f"{url}/outcome", headers=auth["operator"],
                       json={"resolved": False, "reported_at": (NOW + timedelta(days=2)).isoformat()})
    assert late.status_code == 409 and late.json()["error"]["stage"] == "followup"
    assert client.post("/tickets/0000000000000000/outcome", headers=auth["operator"],
                       json={"resolved": True}).status_code == 404
    read = client.get(f"{url}/followup", headers=auth["operator"]).json()
    assert (read["resolved"], read["rating"], read["rating_note"]) == (True, "satisfied", "很快")


def test_api_department_statistics_for_supervisors(settings: Settings, factory, client: TestClient,
                                                   auth: dict[str, dict[str, str]], tmp_path: Path) -> None:
    tid = _ticket(settings, factory, tmp_path, 1)
    _ticket(settings, factory, tmp_path, 2)
    with session_scope(factory) as session:
        followup.record_outcome(session, ticket_id=tid, resolved=True, reported_at=RECEIVED + timedelta(hours=1))
        followup.record_rating(session, ticket_id=tid, rating="dissatisfied")
    day = SHANGHAI_DAY.isoformat()

    assert client.get("/stats/departments", headers=auth["operator"]).status_code == 403
    got = client.get("/stats/departments", params={"from": day, "to": day}, headers=auth["supervisor"])
    assert got.status_code == 200, got.text
    body = got.json()
    assert (body["date_from"], body["date_to"], body["timezone"]) == (day, day, "Asia/Shanghai")
    [row] = body["items"]
    assert row["department"] == "朝阳区城市管理委员会"
    rates = (row["response_rate"], row["resolution_rate"], row["satisfaction_rate"])
    assert (row["tickets"], rates) == (2, (0.5, 0.5, 0.0))
    assert body["total"]["tickets"] == 2
    default = client.get("/stats/departments", headers=auth["supervisor"]).json()  # the last 30 days
    assert default["total"]["tickets"] == 2
    backwards = client.get("/stats/departments", params={"from": day, "to": "2001-01-01"}, headers=auth["supervisor"])
    assert backwards.status_code == 422 and "before it starts" in backwards.json()["error"]["message"]
