"""API keys and roles on the real app: bearer keys, the login session, revocation, CSRF, the CLI."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from conftest import bearer, service_env
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import SESSION_COOKIE, LoginSession, read_session, sign_session
from pipeline import keys
from pipeline.settings import Settings
from pipeline.storage.db import make_engine, make_session_factory, session_scope
from pipeline.storage.keys import ApiKeyRow


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def test_keys_are_stored_hashed_and_checked(settings: Settings, api_keys: dict[str, str]) -> None:
    engine = make_engine(settings)
    factory = make_session_factory(engine)
    key = api_keys["operator"]
    key_id, secret = keys.parse_key(key) or ("", "")
    with session_scope(factory) as session:
        row = session.get(ApiKeyRow, key_id)
        assert row is not None and secret not in row.secret_sha256 and row.secret_sha256 == keys.hash_secret(secret)
        principal = keys.authenticate(session, key=key)
        assert principal is not None and principal.role.value == "operator" and principal.key_id == key_id
        assert keys.authenticate(session, key=key[:-1] + ("A" if key[-1] != "A" else "B")) is None
        assert keys.authenticate(session, key=f"ck_ffffffffffffffff_{secret}") is None
        assert keys.authenticate(session, key="not a key") is None
        assert len(secret) >= 43  # 256 bits
    engine.dispose()


def test_missing_bad_and_wrong_role_keys(client: TestClient, auth: dict[str, dict[str, str]]) -> None:
    missing = client.get("/tickets")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["error"]["code"] == "unauthorized"
    assert client.get("/tickets", headers={"Authorization": "Basic dXNlcjpwdw=="}).status_code == 401
    assert client.get("/tickets", headers=bearer("ck_0000000000000000_nope")).status_code == 401
    wrong = client.get("/tickets", headers=auth["uploader"])
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "forbidden"
    assert client.get("/tickets", headers=auth["operator"]).status_code == 200
    assert client.get("/tickets", headers=auth["supervisor"]).status_code == 200  # supervisor passes every check
    assert client.get("/health").status_code == 200 and client.get("/openapi.json").status_code == 200


def test_a_revoked_key_is_refused_at_once(client: TestClient, settings: Settings,
                                          api_keys: dict[str, str]) -> None:
    key = api_keys["operator"]
    assert client.get("/tickets", headers=bearer(key)).status_code == 200
    engine = make_engine(settings)
    with session_scope(make_session_factory(engine)) as session:
        keys.revoke_key(session, key_id=keys.parse_key(key)[0])  # type: ignore[index]
    engine.dispose()
    assert client.get("/tickets", headers=bearer(key)).status_code == 401


def test_login_sets_a_signed_httponly_strict_cookie(client: TestClient, api_keys: dict[str, str]) -> None:
    page = client.get("/tickets", headers={"Accept": "text/html"})
    assert page.status_code == 401 and 'name="key"' in page.text  # the login form, in place
    bad = client.post("/login", data={"key": "ck_0000000000000000_nope", "next": "/review"},
                      follow_redirects=False)
    assert bad.status_code == 401 and SESSION_COOKIE not in bad.cookies
    uploader = client.post("/login", data={"key": api_keys["uploader"]}, follow_redirects=False)
    assert uploader.status_code == 403 and SESSION_COOKIE not in uploader.cookies

    ok = client.post("/login", data={"key": api_keys["operator"], "name": "王芳", "next": "//evil.example/x"},
                     follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/review"  # no open redirect
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert api_keys["operator"] not in cookie
    assert client.get("/tickets").status_code == 200  # the cookie authenticates API reads


def test_tampered_or_expired_sessions_are_refused(client: TestClient, settings: Settings,
                                                  api_keys: dict[str, str]) -> None:
    from api.auth import session_secret

    secret = session_secret(settings.data_dir)
    key_id = keys.parse_key(api_keys["supervisor"])[0]  # type: ignore[index]
    good = sign_session(secret, LoginSession(key_id=key_id, name="x", csrf="t", expires=2**40))
    assert read_session(secret, good) is not None
    payload, mac = good.rsplit(".", 1)
    assert read_session(secret, payload + "." + mac[:-2] + "AA") is None
    assert read_session(b"another secret", good) is None
    expired = sign_session(secret, LoginSession(key_id=key_id, name="x", csrf="t", expires=1))
    assert read_session(secret, expired) is None
    client.cookies.set(SESSION_COOKIE, expired)
    assert client.get("/tickets").status_code == 401


def test_changes_through_the_cookie_need_the_csrf_token(client: TestClient, api_keys: dict[str, str],
                                                       settings: Settings) -> None:
    from api.auth import session_secret

    client.post("/login", data={"key": api_keys["operator"]}, follow_redirects=False)
    session = read_session(session_secret(settings.data_dir), client.cookies.get(SESSION_COOKIE))
    assert session is not None
    no_token = client.post("/logout", data={}, follow_redirects=False)
    assert no_token.status_code == 403
    out = client.post("/logout", data={"csrf": session.csrf}, follow_redirects=False)
    assert out.status_code == 303
    assert client.get("/tickets").status_code == 401


def test_cli_creates_lists_and_revokes_keys(settings: Settings, tmp_path, model_cache_dir) -> None:
    env = service_env(settings, model_cache_dir)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pipeline.cli", "keys", *args], env=env,
                              capture_output=True, text=True, timeout=120, cwd=tmp_path)

    made = cli("create", "--role", "operator", "--name", "desk 3")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    key_id = keys.parse_key(key)[0]  # type: ignore[index]
    assert "shown only this once" in made.stderr
    listed = cli("list")
    assert key_id in listed.stdout and "desk 3" in listed.stdout and key not in listed.stdout
    assert cli("create", "--role", "janitor").returncode != 0
    assert cli("revoke", key_id).returncode == 0
    assert "revoked" in cli("list").stdout
    again = cli("revoke", key_id)
    assert again.returncode == 2 and "already revoked" in again.stderr
    assert cli("revoke", "nosuchkey").returncode == 2
