"""The review API on real databases: search, detail with transcript and evidence, audited edits,
approve (queued for dispatch on a real Redis) and reject, and the call's audio with Range requests."""

from __future__ import annotations

import subprocess
import wave
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from conftest import make_tone_wav
from fastapi.testclient import TestClient

from api.app import create_app
from pipeline.intake import ingest_file
from pipeline.settings import Settings
from pipeline.storage import repo
from pipeline.storage.db import make_engine, make_session_factory, session_scope
from pipeline.ticket import Evidence, TicketDraft
from pipeline.transcript import Segment, Transcript

BASE = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)  # 09:00 in Beijing


def seed(settings: Settings, *, n: int, urgency: str, district: str | None, summary: str, category: str,
         segments: tuple[tuple[str, str], ...] = (), address: str | None = None, minutes: int = 0,
         evidence: dict[str, tuple[Evidence, ...]] | None = None, needs_review: tuple[str, ...] = (),
         audio: Path | None = None) -> str:
    """A stored call (with real audio when given), its transcript and its ticket; returns the ticket id."""
    engine = make_engine(settings)
    factory = make_session_factory(engine)
    try:
        received = BASE + timedelta(minutes=minutes)
        with session_scope(factory) as session:
            if audio is not None:
                call_id = None
            else:
                call_id = repo.add_call(session, audio_sha256=f"{n:064x}", audio_path=f"audio/x/{n}.wav",
                                        size_bytes=10, received_at=received).id
        if audio is not None:
            from pipeline.intake import CallMetadata

            call_id = ingest_file(settings, session_factory=factory, path=audio,
                                  metadata=CallMetadata(received_at=received)).call_id
        limits = {"emergency": 2, "urgent": 24, "normal": 168}
        with session_scope(factory) as session:
            t = 0.0
            segs = []
            for speaker, text in segments:
                segs.append(Segment(start=t, end=t + 2.5, speaker=speaker, text=text))
                t += 3.0
            transcript = repo.add_transcript(session, call_id=call_id, transcript=Transcript(
                language="zh", segments=tuple(segs), duration=t))
            return repo.save_ticket(session, call_id=call_id, transcript_id=transcript.id, draft=TicketDraft(
                request_type="help", category=category, urgency=urgency,
                due_at=received + timedelta(hours=limits[urgency]), department="朝阳区城市管理委员会",
                summary=summary, language="zh", district=district, address=address, rules_version="t1",
                evidence=evidence or {}, needs_review=needs_review, callback_number="13911023456",
            )).id
    finally:
        engine.dispose()


@pytest.fixture
def rq_settings(settings: Settings, redis_url: str) -> Iterator[Settings]:
    yield settings.model_copy(update={"queue_mode": "rq", "redis_url": redis_url})
    redis.Redis.from_url(redis_url).flushdb()


@pytest.fixture
def client(rq_settings: Settings, auth: dict[str, dict[str, str]]) -> Iterator[TestClient]:
    with TestClient(create_app(rq_settings), headers=auth["operator"]) as c:
        yield c


HEATING = (("agent", "您好，12345。"), ("caller", "我家在朝阳区和平街，暖气不热，家里有老人。"),
           ("agent", "您的电话？"), ("caller", "13911023456。"))


def _heating(settings: Settings, **extra) -> str:
    text = " ".join(s for _, s in HEATING)
    start = text.index("朝阳区")
    evidence = {"district": (Evidence(rule="gazetteer", start_char=start, end_char=start + 3, text="朝阳区",
                                      start_s=3.6, end_s=4.2, speaker="caller"),)}
    options = {"n": 1, "urgency": "urgent", "district": "朝阳区", "summary": "朝阳区和平街暖气不热",
               "category": "utilities.heating", "segments": HEATING, "evidence": evidence,
               "needs_review": ("district", "callback_number")} | extra
    return seed(settings, **options)


@pytest.mark.redis
def test_search_filters_and_urgency_order(client: TestClient, rq_settings: Settings) -> None:
    heating = _heating(rq_settings, minutes=30)
    fire = seed(rq_settings, n=2, urgency="emergency", district="西城区", summary="西城区厨房着火",
                category="public_safety.fire", segments=(("caller", "厨房着火了，快来人"),), minutes=50)
    lamp = seed(rq_settings, n=3, urgency="normal", district="通州区", summary="路灯不亮", address="西街十八号",
                category="city.street_light", segments=(("caller", "小区门口的路灯坏了一个月"),), minutes=10)
    hole = seed(rq_settings, n=4, urgency="urgent", district="通州区", summary="路面有坑", minutes=0,
                category="traffic.road", segments=(("caller", "Big POTHOLE on the road"),))

    listed = client.get("/tickets").json()
    # emergencies first, then urgent by earliest due (the pothole came in 30 minutes before the heating)
    assert [t["id"] for t in listed["items"]] == [fire, hole, heating, lamp]
    assert listed["items"][2]["needs_review"] == ["district", "callback_number"] and listed["items"][2]["version"] == 1
    newest = client.get("/tickets", params={"sort": "newest"}).json()["items"]
    assert len(newest) == 4

    def ids(**params) -> list[str]:
        response = client.get("/tickets", params=params)
        assert response.status_code == 200, response.text
        return [t["id"] for t in response.json()["items"]]

    assert ids(q="西街") == [lamp]                       # address
    assert ids(q="着火") == [fire]                        # summary and transcript
    assert ids(q="一个月") == [lamp]                       # transcript only
    assert ids(q="pothole") == [hole]                     # any case
    assert ids(q="100%") == [] and ids(q="_") == []       # wildcards are text
    assert ids(district="通州区", urgency="urgent") == [hole]
    assert ids(category="city.") == [lamp]
    # received 09:00, 09:10, 09:30, 09:50 Beijing; times without an offset are Beijing time
    assert ids(received_from="2026-06-01T09:10:00", received_to="2026-06-01T09:50:00") == [heating, lamp]
    assert ids(received_from="2026-06-01T01:30:00Z") == [fire, heating]
    assert ids(due_to="2026-06-01T12:00:00+08:00") == [fire]  # due 11:50
    assert ids(due_from="2026-06-03T00:00:00+08:00") == [lamp]
    assert client.get("/tickets", params={"received_from": "soon"}).status_code == 422
    page = client.get("/tickets", params={"limit": 2, "offset": 2}).json()
    assert [t["id"] for t in page["items"]] == [heating, lamp] and page["total"] == 4


@pytest.mark.redis
def test_detail_has_the_dialogue_and_the_evidence(client: TestClient, rq_settings: Settings) -> None:
    ticket_id = _heating(rq_settings)
    ticket = client.get(f"/tickets/{ticket_id}").json()
    transcript = ticket["transcript"]
    assert [(s["speaker"], s["start"], s["end"]) for s in transcript["segments"]] == [
        ("agent", 0.0, 2.5), ("caller", 3.0, 5.5), ("agent", 6.0, 8.5), ("caller", 9.0, 11.5)]
    for seg in transcript["segments"]:
        assert transcript["text"][seg["start_char"]:seg["end_char"]] == seg["text"]
    span = ticket["evidence"]["district"][0]
    assert transcript["text"][span["start_char"]:span["end_char"]] == "朝阳区"
    assert ticket["audio_url"] == f"/tickets/{ticket_id}/audio"
    assert ticket["received_at"].startswith("2026-06-01T01:00") and ticket["audit"] == []


@pytest.mark.redis
def test_edits_are_validated_audited_and_raise_the_version(client: TestClient, rq_settings: Settings,
                                                           auth: dict[str, dict[str, str]]) -> None:
    ticket_id = _heating(rq_settings)
    url = f"/tickets/{ticket_id}"
    for body, word in [
        ({"category": "utilities.heat"}, "category"), ({"district": "朝阳"}, "district"),
        ({"callback_number": "12345"}, "callback_number"), ({"callback_number": "139110234567777"}, "callback_number"),
        ({"vulnerable": ["old"]}, "vulnerable"), ({"urgency": "soon"}, "urgency"), ({"summary": ""}, "summary"),
        ({"amounts": [-5]}, "amounts"), ({"request_type": "rant"}, "request_type"), ({"colour": "red"}, "colour"),
        ({"due_at": "tomorrow"}, "due_at"), ({"street": "x" * 61}, "street"),
    ]:
        response = client.patch(url, json=body)
        assert response.status_code == 422, (body, response.text)
        assert word in response.json()["error"]["message"], response.text
    assert client.get(url).json()["version"] == 1  # nothing was changed by the refused edits

    edited = client.patch(url, json={"district": "海淀区", "callback_number": "139 1102 3457",
                                     "vulnerable": ["elderly", "child", "elderly"]}, headers={"If-Match": '"1"'})
    assert edited.status_code == 200, edited.text
    ticket = edited.json()
    assert ticket["version"] == 2 and ticket["district"] == "海淀区" and ticket["callback_number"] == "13911023457"
    assert ticket["vulnerable"] == ["child", "elderly"]
    assert ticket["department"] == "海淀区城市管理委员会"  # routed anew with the district
    assert ticket["needs_review"] == []                     # both flagged fields were checked by a person
    audit = sorted((a["field"], a["old_value"], a["new_value"]) for a in ticket["audit"])
    assert audit == [("callback_number", "13911023456", "13911023457"),
                     ("department", "朝阳区城市管理委员会", "海淀区城市管理委员会"), ("district", "朝阳区", "海淀区"),
                     ("vulnerable", [], ["child", "elderly"])]
    assert {a["actor"] for a in ticket["audit"]} == {"test operator"} and {a["version"] for a in ticket["audit"]} == {2}

    stale = client.patch(url, json={"address": "和平街1号"}, headers={"If-Match": "1"})
    assert stale.status_code == 409 and "version 2" in stale.json()["error"]["message"]
    same = client.patch(url, json={"district": "海淀区"})
    assert same.status_code == 200 and same.json()["version"] == 2  # no change, no new version

    urgent = client.patch(url, json={"urgency": "emergency"}, headers=auth["supervisor"]).json()
    assert urgent["version"] == 3
    # the due time follows the tier (received 09:00 Beijing + 2 h) and a heating emergency keeps its route
    assert datetime.fromisoformat(urgent["due_at"]) == BASE + timedelta(hours=2)
    cleared = client.patch(url, json={"address": "", "due_at": "2026-06-01T15:30"}).json()
    assert cleared["address"] is None and cleared["version"] == 4
    assert datetime.fromisoformat(cleared["due_at"]) == datetime(2026, 6, 1, 7, 30, tzinfo=UTC)
    trail = client.get(f"{url}/audit").json()
    assert [a["version"] for a in trail] == sorted(a["version"] for a in trail) and len(trail) >= 7
    assert client.get(f"{url}/audit", headers=auth["uploader"]).status_code == 403


@pytest.mark.redis
def test_approve_queues_one_dispatch_job_and_ends_the_review(client: TestClient, rq_settings: Settings) -> None:
    ticket_id = _heating(rq_settings)
    client.patch(f"/tickets/{ticket_id}", json={"address": "和平街1号"})
    approved = client.post(f"/tickets/{ticket_id}/approve", json={"reason": "核实无误", "version": 2})
    assert approved.status_code == 200, approved.text
    ticket = approved.json()
    assert ticket["status"] == "approved" and ticket["reviewed_by"] == "test operator"
    assert ticket["review_reason"] == "核实无误" and ticket["version"] == 2
    assert ticket["audit"][-1]["action"] == "approve" and ticket["audit"][-1]["reason"] == "核实无误"

    again = client.post(f"/tickets/{ticket_id}/approve")  # a second click
    assert again.status_code == 200 and len(again.json()["audit"]) == len(ticket["audit"])
    conn = redis.Redis.from_url(rq_settings.redis_url)
    jobs = [j.decode() for j in conn.lrange("rq:queue:dispatch", 0, -1)]
    assert len(jobs) == 1 and ticket_id in jobs[0]

    assert client.patch(f"/tickets/{ticket_id}", json={"address": "x"}).status_code == 409
    assert client.post(f"/tickets/{ticket_id}/reject", json={"reason": "no"}).status_code == 409


@pytest.mark.redis
def test_approve_with_the_queue_down_keeps_the_ticket_in_review(rq_settings: Settings,
                                                               auth: dict[str, dict[str, str]]) -> None:
    ticket_id = _heating(rq_settings)
    down = rq_settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    with TestClient(create_app(down), headers=auth["operator"], raise_server_exceptions=False) as c:
        response = c.post(f"/tickets/{ticket_id}/approve")
        assert response.status_code == 503, response.text
        ticket = c.get(f"/tickets/{ticket_id}").json()
        assert ticket["status"] == "needs_review" and ticket["audit"] == []


@pytest.mark.redis
def test_reject_needs_a_reason_and_keeps_it(client: TestClient, rq_settings: Settings) -> None:
    ticket_id = _heating(rq_settings)
    assert client.post(f"/tickets/{ticket_id}/reject", json={}).status_code == 422
    assert client.post(f"/tickets/{ticket_id}/reject", json={"reason": "   "}).status_code == 422
    assert client.post(f"/tickets/{ticket_id}/reject", json={"reason": "x" * 1001}).status_code == 422
    rejected = client.post(f"/tickets/{ticket_id}/reject", json={"reason": "重复来电，已有工单"})
    assert rejected.status_code == 200
    ticket = rejected.json()
    assert ticket["status"] == "rejected" and ticket["review_reason"] == "重复来电，已有工单"
    assert ticket["audit"][-1]["action"] == "reject" and ticket["audit"][-1]["new_value"] == "rejected"
    assert client.post(f"/tickets/{ticket_id}/approve").status_code == 409
    assert redis.Redis.from_url(rq_settings.redis_url).llen("rq:queue:dispatch") == 0
    assert client.post("/tickets/0123456789abcdef/reject", json={"reason": "x"}).status_code == 404


@pytest.mark.redis
def test_audio_is_playable_and_seekable(client: TestClient, rq_settings: Settings, tmp_path: Path) -> None:
    ulaw = make_tone_wav(tmp_path / "ulaw.wav", seconds=3.0, channels=2, freq=350)
    ticket_id = _heating(rq_settings, audio=ulaw)
    whole = client.get(f"/tickets/{ticket_id}/audio")
    assert whole.status_code == 200 and whole.headers["content-type"] == "audio/wav"
    assert whole.headers["accept-ranges"] == "bytes"
    played = tmp_path / "played.wav"
    played.write_bytes(whole.content)
    with wave.open(str(played)) as w:  # the stdlib reads PCM only: µ-law became 16-bit PCM
        assert (w.getsampwidth(), w.getnchannels(), w.getframerate()) == (2, 2, 8000)
        assert abs(w.getnframes() / 8000 - 3.0) < 0.05
    part = client.get(f"/tickets/{ticket_id}/audio", headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and len(part.content) == 1000
    assert part.content == whole.content[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(whole.content)}"
    assert client.get(f"/tickets/{ticket_id}/audio", headers={"Range": "bytes=99999999-"}).status_code == 416

    amr = tmp_path / "call.amr"  # AMR-NB, as some call recorders write it
    subprocess.run(["sox", str(make_tone_wav(tmp_path / "a.wav", seconds=2.0, channels=1, freq=440)), "-r", "8000",
                    "-c", "1", "-t", "amr-nb", str(amr)], check=True, capture_output=True)
    amr_ticket = _heating(rq_settings, n=8, audio=amr)
    converted = client.get(f"/tickets/{amr_ticket}/audio")
    assert converted.status_code == 200 and converted.headers["content-type"] == "audio/wav"
    (tmp_path / "amr-played.wav").write_bytes(converted.content)
    with wave.open(str(tmp_path / "amr-played.wav")) as w:
        assert (w.getsampwidth(), w.getnchannels()) == (2, 1) and abs(w.getnframes() / w.getframerate() - 2.0) < 0.1
    cached = list((rq_settings.data_dir / "playable").glob("*.wav"))
    assert len(cached) == 2  # each converted once, kept for the next request

    mp3 = tmp_path / "call.mp3"
    subprocess.run(["sox", str(make_tone_wav(tmp_path / "m.wav", seconds=2.0, channels=1, freq=500)), str(mp3)],
                   check=True, capture_output=True)
    mp3_ticket = _heating(rq_settings, n=9, audio=mp3)
    served = client.get(f"/tickets/{mp3_ticket}/audio")
    assert served.status_code == 200 and served.headers["content-type"] == "audio/mpeg"
    assert served.content == mp3.read_bytes()  # played as stored
