"""/docs from the API's own files: what it says without them, and the policy it is served with.

The page itself is drawn in a browser by tests/e2e/test_docs.py; here an app of its own serves
it from a folder of the test's.
"""

import asyncio
import re
from pathlib import Path

import httpx
from fastapi import FastAPI

from taskline.api.pages import script_hash
from taskline.api.routes.docs import NEEDED, add_docs
from taskline.api.routes.ui import HEADERS as UI_HEADERS


def docs_app(assets: Path) -> FastAPI:
    app = FastAPI(title="Taskline", docs_url=None, redoc_url=None)
    add_docs(app, assets)
    return app


def get(app: FastAPI, path: str) -> httpx.Response:
    async def request() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return await client.get(path)

    return asyncio.run(request())


def test_without_its_files_docs_says_what_is_missing_and_how_to_get_them(tmp_path: Path) -> None:
    missing = tmp_path / "swagger_ui"  # not even the folder
    app = docs_app(missing)
    page = get(app, "/docs")
    assert page.status_code == 503
    assert page.headers["content-type"].startswith("text/html")
    assert "Swagger UI is not installed" in page.text
    assert all(name in page.text for name in NEEDED)
    assert "scripts/fetch_swagger_ui.py" in page.text and "make run" in page.text
    assert page.headers["content-security-policy"] == UI_HEADERS["Content-Security-Policy"]
    assert get(app, "/docs/assets/swagger-ui-bundle.js").status_code == 404

    missing.mkdir()  # fetched while the API runs: no restart needed
    for name in NEEDED:
        (missing / name).write_text(f"/* {name} */")
    assert get(app, "/docs").status_code == 200
    bundle = get(app, "/docs/assets/swagger-ui-bundle.js")
    assert bundle.text == "/* swagger-ui-bundle.js */"
    assert bundle.headers["x-content-type-options"] == "nosniff"


def test_docs_policy_is_the_dashboards_with_only_its_own_inline_script(tmp_path: Path) -> None:
    for name in NEEDED:
        (tmp_path / name).write_text("")
    page = get(docs_app(tmp_path), "/docs")
    (script,) = re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL)
    assert "SwaggerUIBundle(" in script
    policy = page.headers["content-security-policy"]
    assert f"script-src 'self' {script_hash(script)};" in policy
    ui_policy = UI_HEADERS["Content-Security-Policy"]
    assert policy.replace(f" {script_hash(script)}", "") == ui_policy
    assert "cdn" not in page.text and "https://" not in page.text
