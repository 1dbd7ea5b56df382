"""The dashboard: static files under /ui (no build step) and the few settings the page needs.

The page signs in with the API's own users and is fed by `GET /events`; it holds its bearer
token in sessionStorage, so it is served with a strict Content-Security-Policy
(taskline/api/pages.py): scripts and styles only from these files, nothing inline, no frames.
"""

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse

from taskline.api.deps import SettingsDep
from taskline.api.pages import PageFiles, page_headers

UI_DIR = Path(__file__).resolve().parent.parent / "ui"

HEADERS = page_headers()

router = APIRouter(include_in_schema=False)


@router.get("/ui")
async def read_dashboard() -> FileResponse:
    """The dashboard page (its assets use absolute /ui/ paths, so no trailing slash needed)."""
    return FileResponse(UI_DIR / "index.html", headers=HEADERS)


@router.get("/ui/config.json")
async def read_dashboard_config(settings: SettingsDep) -> dict[str, Any]:
    """Ports of Flower and the supervisord console: the page links to them on its own host."""
    return {"flower_port": settings.flower_port, "console_port": settings.console_port}


router.mount("/ui", PageFiles(UI_DIR, HEADERS, html=True), name="ui")
