"""Every route of the app, as registered (the OpenAPI schema's and the pages'), is checked: without a
key 401, with a key of a role it does not allow 403, with one it allows neither. Only the public
allow-list answers without a key. A route added later without ``require_role`` fails here."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from conftest import bearer
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Mount, Route

from api.app import create_app
from pipeline.settings import Settings

#: (method, path) pairs anyone may call; "/static" is a mount
PUBLIC = {
    ("GET", "/health"), ("GET", "/docs"), ("GET", "/docs/oauth2-redirect"), ("GET", "/redoc"),
    ("GET", "/openapi.json"), ("GET", "/login"), ("POST", "/login"),
}
PUBLIC_MOUNTS = {"/static"}
ROLES = ("uploader", "operator", "supervisor")
DUMMY_ID = "0123456789abcdef"


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def _flatten(routes: list[object], prefix: str = "") -> Iterator[tuple[str, object]]:
    """``(full path, route)`` of every route, inside included routers too."""
    for route in routes:
        if hasattr(route, "original_router"):  # an included router (FastAPI keeps it whole)
            context = getattr(route, "include_context", None)
            yield from _flatten(route.original_router.routes, prefix + (getattr(context, "prefix", "") or ""))
        elif isinstance(route, Route | Mount):
            yield prefix + route.path, route


def _endpoints(client: TestClient) -> list[tuple[str, str, object]]:
    """``(method, concrete path, route)`` for every route and method of the app: the OpenAPI schema's,
    the pages (left out of the schema) and mounted apps."""
    routes = list(_flatten(client.app.routes))  # type: ignore[attr-defined]
    out = []
    for full, route in routes:
        if isinstance(route, Mount):
            out.append(("GET", full + "/", route))
            continue
        path = re.sub(r"\{[^}]+\}", DUMMY_ID, full)
        for method in sorted(getattr(route, "methods", None) or ()):
            if method != "HEAD":
                out.append((method, path, route))
    return out


def _allowed_roles(route: object) -> set[str] | None:
    """The roles ``require_role`` lets through on this route (``None``: no role check on it)."""
    if not isinstance(route, APIRoute):
        return None
    found: set[str] | None = None
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        roles = getattr(dep.call, "roles", None)
        if roles is not None:
            names = {r.value for r in roles} or set(ROLES)
            found = names if found is None else found & names
        stack.extend(dep.dependencies)
    return None if found is None else found | {"supervisor"}


def test_the_walk_covers_the_schema_and_the_pages(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()["paths"]
    documented = {(m.upper(), re.sub(r"\{[^}]+\}", DUMMY_ID, p)) for p, ops in schema.items() for m in ops}
    walked = {(m, p) for m, p, _ in _endpoints(client)}
    assert documented <= walked, documented - walked  # nothing in the schema escapes the walk below
    assert {("GET", "/review"), ("GET", f"/review/tickets/{DUMMY_ID}"), ("POST", "/logout")} <= walked


def test_every_route_needs_a_key_of_an_allowed_role(client: TestClient, api_keys: dict[str, str]) -> None:
    checked = 0
    for method, path, route in _endpoints(client):
        mount = isinstance(route, Mount)
        if (mount and path.rstrip("/") in PUBLIC_MOUNTS) or (method, path) in PUBLIC:
            continue
        anonymous = client.request(method, path)
        assert anonymous.status_code == 401, f"{method} {path} without a key: {anonymous.status_code}"
        assert anonymous.headers.get("www-authenticate") == "Bearer", f"{method} {path}"
        for browser_like in ({"Accept": "text/html"},):
            page = client.request(method, path, headers=browser_like)
            assert page.status_code == 401, f"{method} {path} from a browser: {page.status_code}"
        bad = client.request(method, path, headers=bearer("ck_0000000000000000_not-a-key"))
        assert bad.status_code == 401, f"{method} {path} with a wrong key: {bad.status_code}"
        allowed = _allowed_roles(route)
        if path == "/logout":
            checked += 1
            continue  # any logged-in session may end itself
        assert allowed is not None, f"{method} {path} has no require_role() dependency"
        for role in ROLES:
            response = client.request(method, path, headers=bearer(api_keys[role]))
            if role in allowed:
                assert response.status_code not in (401, 403), f"{method} {path} as {role}: {response.status_code}"
            else:
                assert response.status_code == 403, f"{method} {path} as {role}: {response.status_code}"
                assert response.json()["error"]["code"] == "forbidden"
        checked += 1
    assert checked >= 12  # calls, tickets, review actions, audio, pages


def test_public_routes_answer_without_a_key(client: TestClient) -> None:
    for path in ("/health", "/docs", "/openapi.json", "/login", "/static/review.css", "/static/ticket.js"):
        assert client.get(path).status_code == 200, path


def test_roles_of_the_review_routes(client: TestClient) -> None:
    roles = {(m, r.path): _allowed_roles(r) for m, _, r in _endpoints(client) if isinstance(r, APIRoute)}
    assert roles[("POST", "/calls")] == {"uploader", "supervisor"}
    assert roles[("GET", "/calls/{call_id}")] == {"uploader", "operator", "supervisor"}
    for key in [("GET", "/tickets"), ("PATCH", "/tickets/{ticket_id}"), ("POST", "/tickets/{ticket_id}/approve"),
                ("POST", "/tickets/{ticket_id}/reject"), ("GET", "/tickets/{ticket_id}/audio"),
                ("GET", "/review"), ("GET", "/review/tickets/{ticket_id}")]:
        assert roles[key] == {"operator", "supervisor"}, key


@pytest.mark.redis
def test_an_uploader_reads_only_its_own_calls(settings: Settings, redis_url: str, tmp_path) -> None:
    import redis
    from conftest import create_api_keys, make_tone_wav

    first, second = create_api_keys(settings, label="centre A"), create_api_keys(settings, label="centre B")
    with TestClient(create_app(settings.model_copy(update={"queue_mode": "rq", "redis_url": redis_url}))) as c:
        wav = make_tone_wav(tmp_path / "a.wav", freq=610).read_bytes()
        assert c.post("/calls", files={"file": ("a.wav", wav)}, headers=bearer(first["uploader"])).status_code == 202
        assert c.post("/calls", files={"file": ("a.wav", wav)}, headers=bearer(second["uploader"])).status_code == 200
        mine = c.get("/calls", headers=bearer(first["uploader"])).json()
        assert mine["total"] == 1
        call_id = mine["items"][0]["id"]
        assert c.get(f"/calls/{call_id}", headers=bearer(first["uploader"])).status_code == 200
        assert c.get("/calls", headers=bearer(second["uploader"])).json()["total"] == 0
        assert c.get(f"/calls/{call_id}", headers=bearer(second["uploader"])).status_code == 404
        assert c.get(f"/calls/{call_id}", headers=bearer(second["operator"])).status_code == 200
        assert c.get("/calls", headers=bearer(second["supervisor"])).json()["total"] == 1
    redis.Redis.from_url(redis_url).flushdb()
