"""Swagger UI at /docs from the API's own files: the page makes no request to another host.

FastAPI's own page loads swagger-ui-dist from a CDN (and ReDoc's from another), so the app is
built without them (main.py) and serves this one instead. scripts/fetch_swagger_ui.py puts the
locked swagger-ui-dist's files in taskline/api/swagger_ui/ at install time (git-ignored);
without them /docs says so and how to get them, rather than drawing a blank page.

The page is FastAPI's, with local URLs; its one inline script (the SwaggerUIBundle call) is
allowed by its hash, under the policy /ui has (taskline/api/pages.py). The API's OAuth2 flow is
the password flow, which needs no redirect page (FastAPI's /docs/oauth2-redirect).
"""

import re
from html import escape
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from taskline.api.pages import PageFiles, page_headers

ASSETS = Path(__file__).resolve().parent.parent / "swagger_ui"
ASSETS_URL = "/docs/assets"
# What the page loads; the favicon is left out: the page works without it.
NEEDED = ("swagger-ui-bundle.js", "swagger-ui.css")
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)

MISSING = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{title}: Swagger UI is not installed</title></head>
<body>
<h1>Swagger UI is not installed</h1>
<p>The API serves Swagger UI's files itself and they are missing: {missing} in {folder}.</p>
<p>They are fetched at install time: <code>make run</code> or <code>make test</code> fetch them,
or <code>python3 scripts/fetch_swagger_ui.py</code> (which says why it could not). No restart
is needed.</p>
<p>The API itself works; its OpenAPI document is <a href="{openapi}">{openapi}</a>.</p>
</body>
</html>
"""


def swagger_page(app: FastAPI) -> HTMLResponse:
    """FastAPI's Swagger UI page with this API's own files."""
    return get_swagger_ui_html(
        openapi_url=app.openapi_url or "/openapi.json",
        title=f"{app.title} - Swagger UI",
        swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
    )


def add_docs(app: FastAPI, assets: Path = ASSETS) -> None:
    """Serve /docs and its files (under /docs/assets) from `assets`."""
    page = bytes(swagger_page(app).body).decode()
    scripts = INLINE_SCRIPT.findall(page)
    if len(scripts) != 1:  # the hash below would allow the wrong script, or not all
        raise RuntimeError(f"expected one inline script in FastAPI's docs page, not {scripts}")
    headers = page_headers(*scripts)
    assets_headers = page_headers()

    @app.get("/docs", include_in_schema=False)
    async def read_docs() -> HTMLResponse:
        missing = [name for name in NEEDED if not (assets / name).is_file()]
        if missing:
            text = MISSING.format(
                title=escape(app.title),
                missing=escape(", ".join(missing)),
                folder=escape(str(assets)),
                openapi=escape(app.openapi_url or "/openapi.json"),
            )
            return HTMLResponse(text, status_code=503, headers=assets_headers)
        return HTMLResponse(page, headers=headers)

    app.mount(ASSETS_URL, PageFiles(assets, assets_headers), name="docs-assets")
