"""The review pages as HTML (the browser test drives them for real): login, the queue's order and
filters, the ticket page's dialogue, evidence and review flags, the language switch."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from test_tickets_api import _heating, seed

from api.app import create_app
from api.routers.review import highlight
from pipeline.settings import Settings


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
