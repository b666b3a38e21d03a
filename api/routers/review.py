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
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from api.app import State
from api.auth import AuthError, current_session, end_session, require_role, start_session
from pipeline import keys, review
from pipeline.keys import Principal
from pipeline.storage import repo
from pipeline.storage.db import session_scope
from pipeline.storage.keys import Role
from pipeline.ticket import REQUEST_TYPES, URGENCIES, VULNERABLE, TicketStatus

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
        "queue": "待审工单", "queue_empty": "没有待审的工单。", "search": "搜索", "all": "全部",
        "received": "来电时间", "due": "办结时限", "fields_to_check": "待核字段", "open": "打开",
        "ticket": "工单", "call": "来电", "dialogue": "通话记录", "fields": "工单字段", "evidence": "依据",
        "needs_review": "需核对", "approve": "通过", "reject": "退回", "reason": "理由",
        "reject_reason_needed": "请填写退回理由", "cancel": "取消", "saved": "已保存", "saving": "保存中…",
        "status": "状态", "version": "版本", "audit": "修改记录", "prev": "上一条", "next": "下一条",
        "keys_help": "快捷键：a 通过 · r 退回 · j/k 下一条/上一条 · 空格 播放/暂停",
        "no_transcript": "还没有转写。", "play_from_here": "从这里播放", "back_to_queue": "返回列表",
        "overdue": "已超时", "none": "（无）", "approved_next": "已通过，打开下一条…", "done_queue": "已全部审完。",
        "filter": "筛选", "text_search": "摘要、地址或通话内容", "reviewed": "审核",
        "speaker_agent": "话务员", "speaker_caller": "来电人", "speaker_mixed": "通话",
        "status_needs_review": "待审", "status_approved": "已通过", "status_rejected": "已退回",
        "status_dispatched": "已派发", "urgency_emergency": "紧急", "urgency_urgent": "加急",
        "urgency_normal": "一般",
        "request_type_complaint": "投诉", "request_type_help": "求助", "request_type_consultation": "咨询",
        "request_type_suggestion": "建议", "request_type_report": "举报", "request_type_praise": "表扬",
        "vulnerable_elderly": "老人", "vulnerable_child": "儿童", "vulnerable_disabled": "残障",
        "vulnerable_pregnant": "孕妇",
        "field_request_type": "诉求类型", "field_category": "类别", "field_urgency": "紧急程度",
        "field_due_at": "办结时限", "field_district": "区", "field_street": "街道/乡镇", "field_community": "社区",
        "field_address": "详细地址", "field_department": "承办单位", "field_callback_number": "回访电话",
        "field_caller_surname": "来电人姓氏", "field_vulnerable": "特殊群体", "field_amounts": "涉及金额",
        "field_summary": "摘要", "action_edit": "修改", "action_approve": "通过", "action_reject": "退回",
        "dispatch": "派发", "dispatch_queued": "排队待派发", "dispatch_pending": "派发中",
        "dispatch_sent": "已送达", "dispatch_failed": "派发失败", "dispatch_attempts": "已尝试 {n} 次",
        "dispatch_last_error": "上次错误", "dispatch_reason": "原因",
    },
    "en": {
        "product": "12345 ticket review", "login": "Log in", "logout": "Log out", "api_key": "API key",
        "your_name": "Your name", "optional": "optional", "forbidden": "Not allowed",
        "login_other_key": "Log in with another key",
        "bad_key": "That key is not valid (unknown, malformed or revoked).",
        "not_reviewer": "This key's role cannot use the review pages.",
        "need_login": "Log in with an API key first.",
        "role_uploader": "uploader", "role_operator": "operator", "role_supervisor": "supervisor",
        "queue": "Tickets to review", "queue_empty": "No ticket needs review.", "search": "Search", "all": "all",
        "received": "Received", "due": "Due", "fields_to_check": "To check", "open": "Open",
        "ticket": "Ticket", "call": "Call", "dialogue": "Dialogue", "fields": "Ticket fields", "evidence": "evidence",
        "needs_review": "check", "approve": "Approve", "reject": "Reject", "reason": "Reason",
        "reject_reason_needed": "A rejection needs a reason", "cancel": "Cancel", "saved": "Saved",
        "saving": "Saving…", "status": "Status", "version": "Version", "audit": "Changes", "prev": "Previous",
        "next": "Next", "keys_help": "Keys: a approve · r reject · j/k next/previous · space play/pause",
        "no_transcript": "No transcript yet.", "play_from_here": "Play from here", "back_to_queue": "Back to the queue",
        "overdue": "overdue", "none": "(none)", "approved_next": "Approved; opening the next…",
        "done_queue": "All reviewed.", "filter": "Filter", "text_search": "summary, address or dialogue",
        "reviewed": "Reviewed",
        "speaker_agent": "Agent", "speaker_caller": "Caller", "speaker_mixed": "Call",
        "status_needs_review": "needs review", "status_approved": "approved", "status_rejected": "rejected",
        "status_dispatched": "dispatched", "urgency_emergency": "emergency", "urgency_urgent": "urgent",
        "urgency_normal": "normal",
        "request_type_complaint": "complaint", "request_type_help": "help", "request_type_consultation":
        "consultation", "request_type_suggestion": "suggestion", "request_type_report": "report",
        "request_type_praise": "praise",
        "vulnerable_elderly": "elderly", "vulnerable_child": "child", "vulnerable_disabled": "disabled",
        "vulnerable_pregnant": "pregnant",
        "field_request_type": "Request type", "field_category": "Category", "field_urgency": "Urgency",
        "field_due_at": "Due", "field_district": "District", "field_street": "Street office / town",
        "field_community": "Community", "field_address": "Address", "field_department": "Department",
        "field_callback_number": "Callback number", "field_caller_surname": "Caller's surname",
        "field_vulnerable": "Vulnerable", "field_amounts": "Amounts", "field_summary": "Summary",
        "action_edit": "edited", "action_approve": "approved", "action_reject": "rejected",
        "dispatch": "Dispatch", "dispatch_queued": "queued", "dispatch_pending": "pending",
        "dispatch_sent": "sent", "dispatch_failed": "failed", "dispatch_attempts": "{n} attempt(s)",
        "dispatch_last_error": "last error", "dispatch_reason": "reason",
    },
}


#: category code → (Chinese, English) label, as TICKET_SCHEMA.md's taxonomy describes them
CATEGORY_LABELS: dict[str, tuple[str, str]] = {
    "housing.elevator_retrofit": ("老旧小区加装电梯", "Lift retrofit"),
    "housing.property_management": ("物业管理", "Property management"),
    "housing.repair": ("房屋维修", "Home repair"),
    "housing.real_estate_contract": ("购房合同纠纷", "Home purchase dispute"),
    "utilities.heating": ("供暖", "Heating"),
    "utilities.water": ("供水", "Water supply"),
    "utilities.power": ("供电", "Power supply"),
    "utilities.gas": ("燃气", "Gas"),
    "traffic.parking": ("停车", "Parking"),
    "traffic.road": ("道路交通设施", "Roads and stops"),
    "city.street_light": ("路灯", "Street lights"),
    "city.house_numbering": ("门牌楼牌", "House numbers"),
    "city.sanitation": ("环境卫生", "Sanitation"),
    "environment.noise": ("噪音扰民", "Noise"),
    "environment.pollution": ("污染", "Pollution"),
    "market.consumer_dispute": ("消费纠纷", "Consumer dispute"),
    "market.food_safety": ("食品安全", "Food safety"),
    "labour.wage_arrears": ("拖欠工资", "Unpaid wages"),
    "labour.employment_discrimination": ("就业歧视", "Employment discrimination"),
    "social.elderly_care": ("养老服务", "Elderly care"),
    "health.medical": ("医疗服务", "Medical services"),
    "education.school": ("教育入学", "Schools"),
    "public_safety.fire": ("火情", "Fire"),
    "public_safety.emergency": ("其他紧急情况", "Other emergency"),
    "weather.disaster": ("气象灾害", "Weather damage"),
    "other": ("其他", "Other"),
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


# ---------------------------------------------------------------------------------------------- pages
Reviewer = Annotated[Principal, Depends(require_role(*REVIEWERS))]


def _category_label(lang: str, code: str) -> str:
    pair = CATEGORY_LABELS.get(code)
    return (pair[0] if lang == "zh" else pair[1]) if pair else code


def _local(value: datetime | None, zone: ZoneInfo) -> datetime | None:
    return value.astimezone(zone) if value is not None else None


def _queue_ids(session: Any) -> list[str]:
    """The ids of every ticket in review, in the order they are worked (most urgent, earliest due)."""
    rows, _ = repo.list_tickets(session, status=TicketStatus.NEEDS_REVIEW, order="urgency", limit=repo.MAX_PAGE)
    ids = [row.id for row in rows]
    offset = repo.MAX_PAGE
    while len(rows) == repo.MAX_PAGE:
        rows, _ = repo.list_tickets(session, status=TicketStatus.NEEDS_REVIEW, order="urgency",
                                    limit=repo.MAX_PAGE, offset=offset)
        ids.extend(row.id for row in rows)
        offset += repo.MAX_PAGE
    return ids


@router.get("/review", response_class=HTMLResponse)
def queue_page(
    request: Request, state: State, principal: Reviewer,
    urgency: Literal["emergency", "urgent", "normal"] | None = None,
    district: Annotated[str | None, Query(max_length=20)] = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> HTMLResponse:
    """The work queue: tickets that need review, emergencies first, then the earliest due."""
    zone = ZoneInfo(state.settings.timezone)
    lang = page_language(request)
    per_page = 50
    with session_scope(state.session_factory) as session:
        rows, total = repo.list_tickets(
            session, status=TicketStatus.NEEDS_REVIEW, urgency=urgency, district=district or None, text=q,
            order="urgency", limit=per_page, offset=(page - 1) * per_page,
        )
        now = datetime.now(zone)
        items = [{
            "id": row.id, "urgency": row.urgency, "summary": row.summary, "district": row.district,
            "category": _category_label(lang, row.category), "due_at": _local(row.due_at, zone),
            "overdue": row.due_at < now, "received_at": _local(row.call.received_at, zone),
            "needs_review": list(row.needs_review or []), "request_type": row.request_type,
        } for row in rows]
    return render(request, "queue.html", principal=principal, items=items, total=total, page=page,
                  pages=max(1, -(-total // per_page)), urgency=urgency or "", district=district or "", q=q or "",
                  districts=_rules().districts)


def _rules() -> Any:
    from pipeline.extractors.rules import load_rules

    return load_rules()


def highlight(text: str, start_char: int, spans: list[tuple[int, int, str]]) -> list[dict[str, Any]]:
    """A segment's text cut into pieces, each with the fields whose evidence covers it.

    ``spans`` are ``(start_char, end_char, field)`` in the whole transcript's text; the segment begins
    at ``start_char``. Overlapping evidence gives a piece with several fields.

    >>> highlight("我家在朝阳区", 10, [(13, 16, "district")])
    [{'text': '我家在', 'fields': []}, {'text': '朝阳区', 'fields': ['district']}]
    """
    end_char = start_char + len(text)
    cuts = {0, len(text)}
    inside = []
    for a, b, name in spans:
        lo, hi = max(a, start_char) - start_char, min(b, end_char) - start_char
        if lo < hi:
            cuts.update((lo, hi))
            inside.append((lo, hi, name))
    bounds = sorted(cuts)
    pieces = []
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        fields = sorted({name for a, b, name in inside if a <= lo and hi <= b})
        pieces.append({"text": text[lo:hi], "fields": fields})
    return pieces


@router.get("/review/tickets/{ticket_id}", response_class=HTMLResponse)
def ticket_page(request: Request, ticket_id: str, state: State, principal: Reviewer) -> HTMLResponse:
    """One ticket: the call's audio, the dialogue by speaker, the fields with their evidence."""
    from api.routers.tickets import ticket_detail

    zone = ZoneInfo(state.settings.timezone)
    lang = page_language(request)
    rules = _rules()
    with session_scope(state.session_factory) as session:
        ticket = ticket_detail(session, repo.get_ticket(session, ticket_id=ticket_id))
        queue = _queue_ids(session)
    if ticket_id in queue:
        i = queue.index(ticket_id)
        prev_id = queue[i - 1] if i > 0 else None
        next_id = queue[i + 1] if i + 1 < len(queue) else None
    else:
        prev_id, next_id = None, (queue[0] if queue else None)

    spans = [(int(e["start_char"]), int(e["end_char"]), name)
             for name, evidence in ticket.evidence.items() for e in evidence
             if e.get("start_char") is not None and e.get("end_char") is not None]
    lines = []
    if ticket.transcript is not None:
        for seg in ticket.transcript.segments:
            lines.append({"seg": seg, "pieces": highlight(seg.text, seg.start_char, spans)})
    edited = {entry.field for entry in ticket.audit if entry.action == "edit"}
    data = ticket.model_dump(mode="json")
    fields = []
    for name in review.EDITABLE_FIELDS:
        value = data.get(name)
        evidence = ticket.evidence.get(name) or []
        fields.append({
            "name": name, "value": value, "evidence": evidence, "needs_review": name in ticket.needs_review,
            "edited": name in edited, "confidence": ticket.confidence.get(name),
        })
    due_local = _local(ticket.due_at, zone)
    return render(
        request, "ticket.html", principal=principal, ticket=ticket, fields=fields, lines=lines,
        prev_id=prev_id, next_id=next_id, queue_position=(queue.index(ticket_id) + 1) if ticket_id in queue else None,
        queue_total=len(queue), received_local=_local(ticket.received_at, zone), due_local=due_local,
        due_input=due_local.strftime("%Y-%m-%dT%H:%M") if due_local else "",
        categories=[(code, _category_label(lang, code)) for code in rules.categories],
        districts=rules.districts, request_types=REQUEST_TYPES, urgencies=URGENCIES, vulnerable_groups=VULNERABLE,
        category_label=_category_label(lang, ticket.category), zone_info=zone,
    )
