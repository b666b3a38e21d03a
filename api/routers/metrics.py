"""``/metrics``: Prometheus text format, read at scrape time (supervisors only; give Prometheus a key).

Counters come from Redis, where every worker process on every host adds to them; queue depths, live
workers and calls by status are read from RQ and the database when scraped (see ``workers.metrics``). A
backing service that does not answer sets its ``callintake_*_up`` gauge to 0; the scrape still succeeds.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from api.app import State
from api.auth import Principal, Role, require_role

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response, summary="Queue, job and call metrics (Prometheus)",
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text exposition"}})
def metrics(state: State, principal: Annotated[Principal, Depends(require_role(Role.SUPERVISOR))]) -> Response:
    from workers.metrics import CONTENT_TYPE, render

    return Response(render(state.redis, state.session_factory), media_type=CONTENT_TYPE)
