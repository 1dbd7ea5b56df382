"""The dashboard: static files under /ui (no build step) and the few settings the page needs.

The page signs in with the API's own users and is fed by `GET /events`; it holds its bearer
token in sessionStorage, so it is served with a strict Content-Security-Policy: scripts and
styles only from these files, nothing inline, no frames.
"""

import os
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from taskline.api.deps import SettingsDep

UI_DIR = Path(__file__).resolve().parent.parent / "ui"

# `no-cache` revalidates with the ETag StaticFiles sends: an updated app.js is never stale.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class UiFiles(StaticFiles):
    """StaticFiles with the page's security and caching headers on every answer."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(HEADERS)
        return response


router = APIRouter(include_in_schema=False)


@router.get("/ui")
async def read_dashboard() -> FileResponse:
    """The dashboard page (its assets use absolute /ui/ paths, so no trailing slash needed)."""
    return FileResponse(UI_DIR / "index.html", headers=HEADERS)


@router.get("/ui/config.json")
async def read_dashboard_config(settings: SettingsDep) -> dict[str, Any]:
    """Ports of Flower and the supervisord console: the page links to them on its own host."""
    return {"flower_port": settings.flower_port, "console_port": settings.console_port}


router.mount("/ui", UiFiles(directory=UI_DIR, html=True), name="ui")
