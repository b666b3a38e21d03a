"""The review pages: log in with an API key, the work queue, one ticket with its call.

Server-rendered (Jinja2 templates in ``api/templates``), with small plain scripts and styles in
``api/static``; nothing is loaded from elsewhere. Labels are in Chinese or English: ``?lang=zh|en``
switches and remembers the choice in a cookie; Chinese is the default.

The pages use the same roles as the API (operator or supervisor); their scripts call the JSON API with
the session cookie and the CSRF token that the page carries in ``<meta name="csrf-token">``.
"""

from __future__ import annotations

import hmac
import logging
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from api.app import State
from api.auth import AuthError, current_session, end_session, start_session
from pipeline import keys
from pipeline.keys import Principal
from pipeline.storage.db import session_scope
from pipeline.storage.review_models import Role

logger = logging.getLogger(__name__)

API_DIR = Path(__file__).resolve().parents[1]
TEMPLATES_DIR = API_DIR / "templates"
STATIC_DIR = API_DIR / "static"
LANG_COOKIE = "callintake_lang"
LANGUAGES = ("zh", "en")
#: roles that may use the review pages
REVIEWERS = (Role.OPERATOR, Role.SUPERVISOR)

router = APIRouter(tags=["review pages"], include_in_schema=False)
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))

LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "product": "12345 工单审核", "login": "登录", "logout": "退出", "api_key": "API 密钥",
        "your_name": "您的姓名", "optional": "可不填", "forbidden": "无权访问",
        "login_other_key": "换一个密钥登录", "bad_key": "密钥无效（未知、格式不对或已吊销）。",
        "not_reviewer": "该密钥的角色不能使用审核页面。", "need_login": "请先用 API 密钥登录。",
        "role_uploader": "上传", "role_operator": "审核员", "role_supervisor": "主管",
    },
    "en": {
        "product": "12345 ticket review", "login": "Log in", "logout": "Log out", "api_key": "API key",
        "your_name": "Your name", "optional": "optional", "forbidden": "Not allowed",
        "login_other_key": "Log in with another key",
        "bad_key": "That key is not valid (unknown, malformed or revoked).",
        "not_reviewer": "This key's role cannot use the review pages.",
        "need_login": "Log in with an API key first.",
        "role_uploader": "uploader", "role_operator": "operator", "role_supervisor": "supervisor",
    },
}


def mount_static(app: FastAPI) -> None:
    """Serve ``api/static`` at ``/static`` (public: styles and scripts only)."""
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")


def page_language(request: Request) -> str:
    """``?lang=`` first, then the cookie, then Chinese."""
    asked = request.query_params.get("lang")
    if asked in LANGUAGES:
        return asked
    remembered = request.cookies.get(LANG_COOKIE)
    return remembered if remembered in LANGUAGES else "zh"


def render(request: Request, template: str, *, status: int = 200, principal: Principal | None = None,
           headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    """A page in the request's language, with the labels, the principal and the session's CSRF token."""
    lang = page_language(request)
    session = current_session(request) if principal is not None else None
    response = templates.TemplateResponse(request, template, {
        "lang": lang, "t": LABELS[lang], "principal": principal, "csrf": session.csrf if session else "",
        "static_url": lambda name: f"/static/{name}", **context,
    }, status_code=status, headers=headers)
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 24 * 3600, path="/", samesite="lax")
    return response


def render_auth_page(request: Request, status: int, message: str,
                     headers: dict[str, str] | None = None) -> HTMLResponse:
    """The answer to a browser asking for a page it may not see: the login form (401) or a refusal (403)."""
    if status == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return render(request, "login.html", status=401, headers=headers, next=target,
                      message=LABELS[page_language(request)]["need_login"])
    return render(request, "forbidden.html", status=403, headers=headers, message=message)


def _safe_next(target: str | None) -> str:
    """Only a path on this site (never ``//host`` or a scheme) is followed after login."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/review"
    return target


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return render(request, "login.html", next=_safe_next(next), message="")


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request, state: State, key: Annotated[str, Form(max_length=200)],
    name: Annotated[str, Form(max_length=100)] = "", next: Annotated[str, Form(max_length=2000)] = "/review",
) -> Response:
    """Check the key; on success set the session cookie and go on to ``next`` (the queue by default)."""
    labels = LABELS[page_language(request)]
    with session_scope(state.session_factory) as db:
        principal = keys.authenticate(db, key=key)
    if principal is None:
        return render(request, "login.html", status=401, next=_safe_next(next), message=labels["bad_key"])
    if not principal.allows(REVIEWERS):
        return render(request, "login.html", status=403, next=_safe_next(next), message=labels["not_reviewer"])
    response = RedirectResponse(_safe_next(next), status_code=303)
    start_session(request, response, principal, name=name)
    logger.info("key %s (%s) logged in as %r", principal.key_id, principal.role.value, name or principal.name)
    return response


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    """End the session; the form carries the session's CSRF token so that no other site can log one out."""
    session = current_session(request)
    if session is None:
        raise AuthError(401, "unauthorized", "not logged in")
    if not hmac.compare_digest(csrf.encode(), session.csrf.encode()):
        raise AuthError(403, "csrf", "the logout form did not carry this session's token")
    response = RedirectResponse("/login", status_code=303)
    end_session(request, response)
    return response
