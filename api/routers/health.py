"""``/health``: is the database reachable, and the job queue (when one is used)?"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.app import State
from api.schemas import HealthRead
from pipeline.errors import StorageUnavailable
from pipeline.storage.db import check_database

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthRead, responses={503: {"model": HealthRead}})
def health(state: State) -> JSONResponse:
    """200 when every backing service answers, 503 (with which one does not) otherwise."""
    try:
        check_database(state.engine)
        database = "ok"
    except StorageUnavailable as exc:
        database = str(exc)
    if state.redis is None:
        queue = "inline"
    else:
        from workers.queues import ping

        try:
            ping(state.redis)
            queue = "ok"
        except StorageUnavailable as exc:
            queue = str(exc)
    healthy = database == "ok" and queue in ("ok", "inline")
    body = HealthRead(status="ok" if healthy else "unavailable", database=database, queue=queue)
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)
