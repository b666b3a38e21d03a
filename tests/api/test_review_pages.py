"""The review pages as HTML (the browser test drives them for real): login, the queue's order and
filters, the ticket page's dialogue, evidence and review flags, where the ticket went onward, the language
switch."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from support.ticket_server import TicketServer, ticket_server_fixture  # noqa: F401
from support.tickets import make_ticket
from test_tickets_api import _heating, seed

from api.app import create_app
from api.routers.review import highlight
from pipeline.dispatch.service import dispatch_ticket, latest_dispatch
from pipeline.settings import DispatchSettings, Settings
from pipeline.storage.db import make_engine, make_session_factory, session_scope
from pipeline.storage.dispatch import DispatchStatus


@pytest.fixture
def browser(settings: Settings, api_keys: dict[str, str]) -> Iterator[TestClient]:
    """A client logged in as an operator through the login form."""
    with TestClient(create_app(settings), headers={"Accept": "text/html"}) as c:
        response = c.post("/login", data={"key": api_keys["operator"], "name": "李娜"}, follow_redirects=False)
        assert response.status_code == 303
        yield c


def test_highlight_cuts_overlapping_evidence() -> None:
    assert highlight("我家在朝阳区和平街", 10, [(13, 16, "district"), (13, 19, "street"), (0, 5, "x")]) == [
        {"text": "我家在", "fields": []}, {"text": "朝阳区", "fields": ["district", "street"]},
        {"text": "和平街", "fields": ["street"]},
    ]
    assert highlight("abc", 0, []) == [{"text": "abc", "fields": []}]


def test_queue_lists_review_work_emergencies_first(browser: TestClient, settings: Settings) -> None:
    heating = _heating(settings)
    fire = seed(settings, n=2, urgency="emergency", district="西城区", summary="西城区厨房着火",
                category="public_safety.fire", segments=(("caller", "厨房着火了"),), minutes=40)
    page = browser.get("/review")
    assert page.status_code == 200
    order = re.findall(r'data-id="([0-9a-f]+)"', page.text)
    assert order == [fire, heating]
    assert "紧急" in page.text and "李娜" in page.text  # Chinese by default, the name given at login
    assert re.findall(r'data-id="([0-9a-f]+)"', browser.get("/review", params={"urgency": "urgent"}).text) == [heating]
    assert re.findall(r'data-id="([0-9a-f]+)"', browser.get("/review", params={"q": "着火"}).text) == [fire]
    browser.post(f"/tickets/{fire}/approve", headers={"X-CSRF-Token": _csrf(browser.get("/review").text)})
    assert re.findall(r'data-id="([0-9a-f]+)"', browser.get("/review").text) == [heating]


def _csrf(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert found, "the page carries the session's CSRF token"
    return found.group(1)


def test_ticket_page_shows_dialogue_evidence_and_flags(browser: TestClient, settings: Settings) -> None:
    ticket_id = _heating(settings)
    page = browser.get(f"/review/tickets/{ticket_id}")
    assert page.status_code == 200, page.text
    html = page.text
    assert f'src="/tickets/{ticket_id}/audio"' in html
    starts = re.findall(r'class="line speaker-(\w+)" data-index="\d+" data-start="([\d.]+)"', html)
    assert starts == [("agent", "0.0"), ("caller", "3.0"), ("agent", "6.0"), ("caller", "9.0")]
    assert '<mark class="ev" data-fields="district">朝阳区</mark>' in html
    flagged = re.findall(r'class="field needs-review" data-field="(\w+)"', html)
    assert flagged == ["district", "callback_number"]
    assert "话务员" in html and "来电人" in html

    english = browser.get(f"/review/tickets/{ticket_id}", params={"lang": "en"})
    assert "Caller" in english.text and "Approve" in english.text and "来电人" not in english.text
    assert "callintake_lang=en" in english.headers["set-cookie"]
    assert "Approve" in browser.get(f"/review/tickets/{ticket_id}").text  # the choice is remembered


def test_pages_need_a_reviewer(settings: Settings, api_keys: dict[str, str]) -> None:
    from conftest import bearer

    with TestClient(create_app(settings), headers={"Accept": "text/html"}) as c:
        login = c.get("/review")
        assert login.status_code == 401 and 'action="/login"' in login.text and 'value="/review"' in login.text
        refused = c.get("/review", headers=bearer(api_keys["uploader"]))
        assert refused.status_code == 403
        assert c.get("/review", headers=bearer(api_keys["supervisor"])).status_code == 200
        assert c.get("/static/review.js").status_code == 200 and c.get("/login").status_code == 200


def _dispatch_line(html: str) -> tuple[str, str] | None:
    """``(data-status, text)`` of the page's dispatch line, or ``None`` when it has none."""
    found = re.search(r'<p class="dispatch [^"]*" id="dispatch-state" data-status="(\w+)">(.*?)</p>', html, re.S)
    if found is None:
        return None
    return found.group(1), found.group(2)


def test_ticket_page_and_detail_show_where_the_ticket_went(browser: TestClient, settings: Settings,
                                                           ticket_server: TicketServer, tmp_path: Path) -> None:
    hook = settings.model_copy(update={"dispatch": DispatchSettings(
        connector="webhook", url=f"{ticket_server.url}/in", secret=SecretStr("page-secret"), timeout_s=2.0)})
    engine = make_engine(hook)
    factory = make_session_factory(engine)
    try:
        queued, sent, refused, pending, odd = (make_ticket(hook, factory, tmp_path, seed=n)[1] for n in range(1, 6))
        assert dispatch_ticket(hook, session_factory=factory, ticket_id=sent).status is DispatchStatus.SENT
        ticket_server.fail_next(1, status=422, body="callback number missing")
        assert dispatch_ticket(hook, session_factory=factory, ticket_id=refused).status is DispatchStatus.FAILED
        ticket_server.fail_next(1, status=503)
        assert dispatch_ticket(hook, session_factory=factory, ticket_id=pending,
                               final_attempt=False).status is DispatchStatus.PENDING
        assert dispatch_ticket(hook, session_factory=factory, ticket_id=odd).status is DispatchStatus.SENT
        with session_scope(factory) as session:  # a receiver that answered with a link that is not a web page
            latest_dispatch(session, ticket_id=odd).external_url = "javascript:alert(1)"
    finally:
        engine.dispose()

    detail = browser.get(f"/tickets/{sent}").json()
    assert detail["status"] == "dispatched"
    assert {k: detail["dispatch"][k] for k in ("status", "attempts", "external_ref", "external_url", "last_error",
                                               "version", "connector")} == {
        "status": "sent", "attempts": 1, "external_ref": "WH-1", "external_url": f"{ticket_server.url}/tickets/WH-1",
        "last_error": None, "version": 1, "connector": "webhook"}
    assert browser.get(f"/tickets/{queued}").json()["dispatch"] is None  # approved, its job not run yet
    failed = browser.get(f"/tickets/{refused}").json()["dispatch"]
    assert (failed["status"], failed["attempts"], failed["last_status_code"]) == ("failed", 1, 422)
    assert "callback number missing" in failed["last_error"]
    waiting = browser.get(f"/tickets/{pending}").json()["dispatch"]
    assert (waiting["status"], waiting["attempts"], waiting["last_status_code"]) == ("pending", 1, 503)

    state, text = _dispatch_line(browser.get(f"/review/tickets/{sent}", params={"lang": "zh"}).text)
    assert state == "sent" and "✓ 已送达" in text and "已尝试 1 次" in text
    assert f'<a id="dispatch-link" href="{ticket_server.url}/tickets/WH-1"' in text and ">WH-1</a>" in text
    state, text = _dispatch_line(browser.get(f"/review/tickets/{refused}").text)
    assert state == "failed" and "✗ 派发失败" in text and "原因: " in text and "callback number missing" in text
    state, text = _dispatch_line(browser.get(f"/review/tickets/{pending}").text)
    assert state == "pending" and "派发中" in text and "已尝试 1 次" in text and "上次错误: " in text
    state, text = _dispatch_line(browser.get(f"/review/tickets/{queued}").text)
    assert state == "queued" and "排队待派发" in text and "dispatch-meta" not in text
    state, text = _dispatch_line(browser.get(f"/review/tickets/{odd}").text)
    assert state == "sent" and "<a " not in text and '<span id="dispatch-ref">WH-2</span>' in text

    state, text = _dispatch_line(browser.get(f"/review/tickets/{sent}", params={"lang": "en"}).text)
    assert state == "sent" and "Dispatch:" in text and "✓ sent" in text and "1 attempt(s)" in text
    state, text = _dispatch_line(browser.get(f"/review/tickets/{refused}").text)
    assert state == "failed" and "✗ failed" in text and "reason: " in text and "callback number missing" in text
    state, text = _dispatch_line(browser.get(f"/review/tickets/{pending}").text)
    assert state == "pending" and "pending" in text and "last error: " in text and "503" in text
    assert _dispatch_line(browser.get(f"/review/tickets/{queued}").text)[0] == "queued"
    assert _dispatch_line(browser.get(f"/review/tickets/{_heating(settings)}").text) is None  # still in review
