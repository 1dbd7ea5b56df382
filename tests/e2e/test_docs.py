"""/docs in headless Chromium: Swagger UI draws the API's operations from the API's own files,
under the page's Content-Security-Policy, and the page asks no other host for anything."""

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
import pytest

from tests.processes import PASSWORDS, Stack
from tests.ui_browser import page_errors

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Route

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def test_docs_work_from_the_apis_own_files_alone(browser: "Browser", stack: Stack) -> None:
    from playwright.sync_api import expect

    api = urlsplit(stack.url).netloc
    elsewhere: list[str] = []

    def only_the_api(route: "Route") -> None:
        """Every request to another host is refused, and noted."""
        if urlsplit(route.request.url).netloc == api:
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    context = browser.new_context()
    try:
        context.route("**/*", only_the_api)
        page = context.new_page()
        errors = page_errors(page)  # a Content-Security-Policy violation is one
        page.goto(f"{stack.url}/docs")  # returns once the page and its files have loaded
        assert elsewhere == []
        submit = page.locator("#operations-tasks-create_task_tasks_post")
        expect(submit).to_be_visible()
        expect(submit.locator(".opblock-summary-method")).to_have_text("POST")
        expect(submit.locator(".opblock-summary-path")).to_have_text("/tasks")

        # Signed in through the page's OAuth2 password form, an operation runs from it.
        page.get_by_role("button", name="Authorize").first.click()
        page.locator("#oauth_username").fill("admin")
        page.locator("#oauth_password").fill(PASSWORDS["admin"])
        page.get_by_role("button", name="Apply given OAuth2 credentials").click()
        expect(page.get_by_role("button", name="Remove authorization")).to_be_visible()
        page.get_by_role("button", name="Close").click()
        listing = page.locator("#operations-tasks-read_tasks_tasks_get")
        listing.locator(".opblock-summary-control").click()
        listing.get_by_role("button", name="Try it out").click()
        listing.get_by_role("button", name="Execute").click()
        status = listing.locator(".live-responses-table tr.response .response-col_status")
        expect(status).to_have_text("200")

        assert elsewhere == []
        assert errors == []
    finally:
        context.close()


def test_fastapis_cdn_pages_are_gone(stack: Stack) -> None:
    with httpx.Client(base_url=stack.url) as anonymous:
        page = anonymous.get("/docs")
        assert page.status_code == 200
        assert "cdn." not in page.text and "/docs/assets/swagger-ui-bundle.js" in page.text
        assert anonymous.get("/redoc").status_code == 404
        assert anonymous.get("/docs/oauth2-redirect").status_code == 404
        bundle = anonymous.get("/docs/assets/swagger-ui-bundle.js")
        assert bundle.status_code == 200 and "SwaggerUIBundle" in bundle.text
