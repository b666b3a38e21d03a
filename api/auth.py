"""Who may call what: API keys with roles, for the JSON API and for the review pages alike.

Every route but the public ones (``/health``, ``/docs``, ``/openapi.json``, the login page and the static
assets) depends on ``require_role(...)``::

    from api.auth import require_role, Principal

    @router.post("/admin/reprocess")
    def reprocess(principal: Annotated[Principal, Depends(require_role("supervisor"))]) -> ...:
        ...

    # or, when the handler does not need to know who:
    router = APIRouter(dependencies=[Depends(require_role("supervisor"))])

The dependency accepts ``Authorization: Bearer <key>`` (call-centre systems, scripts) or the signed
session cookie that ``POST /login`` sets (the review pages and their scripts). No credentials: 401 with
``WWW-Authenticate: Bearer``; a key of another role: 403. A supervisor passes every check. A request that
changes something on the strength of the cookie alone must also carry the session's CSRF token in
``X-CSRF-Token`` (the pages do), so another site cannot make a logged-in browser act.

Error bodies have the API's usual shape (``{"error": {"code", "message", "stage"}}``); a browser asking
for a page gets the login page (401) or a short refusal page (403) instead.

Sessions: the cookie holds the key id, the name given at login, a CSRF token and an expiry, signed with
HMAC-SHA256 under a secret kept in ``<data_dir>/session.key`` (made on first use, mode 0600; hosts that
share the data directory share it). The key is looked up on every request, so revoking it ends its
sessions at once. The cookie is ``HttpOnly``, ``SameSite=Strict``, and ``Secure`` over HTTPS.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.app import State, get_state
from api.errors import error_body
from pipeline import keys
from pipeline.keys import Principal
from pipeline.storage.db import session_scope
from pipeline.storage.keys import Role

__all__ = [
    "AuthError", "Operator", "Principal", "Role", "SESSION_COOKIE", "Supervisor", "Uploader",
    "install_auth_handlers", "require_role",
]

logger = logging.getLogger(__name__)

SESSION_COOKIE = "callintake_session"
CSRF_HEADER = "X-CSRF-Token"
#: a session lasts one long shift
SESSION_TTL_S = 12 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer ck_…`")


class AuthError(Exception):
    """No valid credentials (401) or not allowed (403)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class LoginSession:
    """What a signed session cookie carries."""

    key_id: str
    name: str
    csrf: str
    expires: int


# --------------------------------------------------------------------------------------------- sessions
_secrets: dict[Path, bytes] = {}
_secrets_lock = threading.Lock()


def session_secret(data_dir: Path) -> bytes:
    """The HMAC secret for session cookies, made once per data directory (race-safe across processes)."""
    path = (Path(data_dir) / "session.key").resolve()
    with _secrets_lock:
        cached = _secrets.get(path)
        if cached is not None:
            return cached
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".session.key.{os.getpid()}.{secrets.token_hex(4)}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
            try:
                os.link(tmp, path)  # fails if another process made it first; theirs wins
            except FileExistsError:
                pass
            finally:
                tmp.unlink(missing_ok=True)
        value = bytes.fromhex(path.read_text().strip())
        _secrets[path] = value
        return value


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_session(secret: bytes, session: LoginSession) -> str:
    payload = _b64(json.dumps(
        {"k": session.key_id, "n": session.name, "c": session.csrf, "e": session.expires},
        separators=(",", ":"), ensure_ascii=False,
    ).encode())
    mac = _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{mac}"


def read_session(secret: bytes, cookie: str | None, *, now: float | None = None) -> LoginSession | None:
    """The session a cookie carries, or ``None`` when it is missing, tampered with or expired."""
    if not cookie or "." not in cookie:
        return None
    payload, mac = cookie.rsplit(".", 1)
    expected = _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(mac, expected):
        return None
    try:
        data = json.loads(_unb64(payload))
        session = LoginSession(key_id=str(data["k"]), name=str(data["n"]), csrf=str(data["c"]), expires=int(data["e"]))
    except (ValueError, KeyError, TypeError):
        return None
    if session.expires < (now if now is not None else time.time()):
        return None
    return session


def start_session(request: Request, response: Response, principal: Principal, *, name: str | None) -> LoginSession:
    """Set the session cookie for ``principal`` on ``response`` (after a successful login)."""
    state = get_state(request)
    session = LoginSession(key_id=principal.key_id, name=(name or "").strip()[:keys.NAME_MAX],
                      csrf=secrets.token_urlsafe(24), expires=int(time.time()) + SESSION_TTL_S)
    response.set_cookie(
        SESSION_COOKIE, sign_session(session_secret(state.settings.data_dir), session), max_age=SESSION_TTL_S,
        path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https",
    )
    return session


def end_session(request: Request, response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")


def current_session(request: Request) -> LoginSession | None:
    """The request's valid session cookie, or ``None``."""
    state = get_state(request)
    return read_session(session_secret(state.settings.data_dir), request.cookies.get(SESSION_COOKIE))


# ------------------------------------------------------------------------------------------ dependency
def require_role(*roles: Role | str) -> Callable[..., Principal]:
    """A FastAPI dependency that yields the request's ``Principal`` if it has one of ``roles``.

    With no roles, any valid key passes. A supervisor passes every check. Raises ``AuthError``: 401
    without valid credentials, 403 for another role (or a cookie-authenticated change without the
    CSRF token).
    """
    wanted = tuple(sorted({Role(r) for r in roles}))
    known = _dependencies.get(wanted)
    if known is not None:  # one callable per role set, so FastAPI checks a request once per set
        return known

    def dependency(
        request: Request, state: State,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        principal = _authenticate(request, state, credentials)
        if wanted and not principal.allows(wanted):
            raise AuthError(403, "forbidden", f"the {principal.role.value} role may not do this "
                            f"(needs {' or '.join(r.value for r in wanted)})")
        request.state.principal = principal
        return principal

    dependency.__name__ = f"require_role_{'_'.join(r.value for r in wanted) or 'any'}"
    dependency.roles = wanted  # type: ignore[attr-defined]  # read by the access tests and docs
    _dependencies[wanted] = dependency
    return dependency


_dependencies: dict[tuple[Role, ...], Callable[..., Principal]] = {}


def _authenticate(request: Request, state: Any, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    header = request.headers.get("authorization")
    if header:
        if credentials is None or not credentials.credentials:
            raise AuthError(401, "unauthorized", "the Authorization header must be 'Bearer <API key>'")
        with session_scope(state.session_factory) as db:
            principal = keys.authenticate(db, key=credentials.credentials)
        if principal is None:
            raise AuthError(401, "unauthorized", "the API key is not valid (unknown, malformed or revoked)")
        return principal
    session = current_session(request)
    if session is None:
        raise AuthError(401, "unauthorized", "an API key is needed: send 'Authorization: Bearer <key>' or log in")
    with session_scope(state.session_factory) as db:
        found = keys.find_principal(db, key_id=session.key_id, name=session.name)
    if found is None:
        raise AuthError(401, "unauthorized", "the key of this session was revoked; log in again")
    if request.method not in SAFE_METHODS:
        token = request.headers.get(CSRF_HEADER) or ""
        if not hmac.compare_digest(token.encode(), session.csrf.encode()):
            raise AuthError(403, "csrf", f"a change made from a logged-in page needs the {CSRF_HEADER} header")
    return found


#: handler parameters: ``principal: Operator`` and so on
Uploader = Annotated[Principal, Depends(require_role(Role.UPLOADER))]
Operator = Annotated[Principal, Depends(require_role(Role.OPERATOR))]
Supervisor = Annotated[Principal, Depends(require_role(Role.SUPERVISOR))]


# --------------------------------------------------------------------------------------------- errors
def _wants_page(request: Request) -> bool:
    return request.method in ("GET", "HEAD") and "text/html" in request.headers.get("accept", "")


async def _auth_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AuthError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    if _wants_page(request):
        from api.routers.review import render_auth_page

        return render_auth_page(request, exc.status, exc.message, headers=headers)
    return JSONResponse(error_body(exc.code, exc.message, "auth"), status_code=exc.status, headers=headers)


def install_auth_handlers(app: FastAPI) -> None:
    """Register the 401/403 handler on ``app``."""
    app.add_exception_handler(AuthError, _auth_error)
