"""The headers of the pages the API serves to browsers (/ui, /docs) and of their files.

Both pages may hold a bearer token, so both get the same strict Content-Security-Policy:
scripts and styles only from the API's own files, nothing inline, no frames. A page with an
inline script of its own (/docs) names exactly that script by its hash; the policy is
otherwise the same.
"""

import base64
import hashlib
import os

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope


def script_hash(script: str) -> str:
    """The CSP source that allows exactly this inline script."""
    digest = hashlib.sha256(script.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def page_headers(*inline_scripts: str) -> dict[str, str]:
    """The security and caching headers of a page, allowing these inline scripts only.

    `no-cache` revalidates with the ETag StaticFiles sends: an updated file is never stale.
    """
    scripts = " ".join(["'self'", *(script_hash(script) for script in inline_scripts)])
    return {
        "Content-Security-Policy": (
            f"default-src 'self'; script-src {scripts}; style-src 'self'; "
            "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
            "base-uri 'none'; form-action 'self'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }


class PageFiles(StaticFiles):
    """StaticFiles with a page's headers on every answer; a missing folder answers 404 (not
    500), so that files fetched at install time may be absent."""

    def __init__(
        self, directory: str | os.PathLike[str], headers: dict[str, str], html: bool = False
    ) -> None:
        super().__init__(directory=directory, html=html, check_dir=False)
        self.headers = headers

    async def check_config(self) -> None:
        """No check: a missing folder is a missing file."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(self.headers)
        return response
