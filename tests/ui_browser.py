"""Headless Chromium for the dashboard tests: Playwright driving the system's Chromium.

Playwright's own browser downloads are not used (`playwright install` needs network access
the test machines may not have): the tests launch Debian's `chromium` package, or the browser
CHROMIUM_PATH names. A missing browser or Playwright fails the test, saying what to install;
nothing is skipped.
"""

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest

from tests.processes import PASSWORDS

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page

PLAYWRIGHT_PIN = "playwright==1.65.2"
BROWSERS = ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome")


def chromium_path() -> str:
    """The Chromium to launch: CHROMIUM_PATH, else the first of BROWSERS on the PATH."""
    named = os.environ.get("CHROMIUM_PATH")
    if named:
        if not os.access(named, os.X_OK):
            pytest.fail(f"CHROMIUM_PATH={named} is not an executable", pytrace=False)
        return named
    for name in BROWSERS:
        if found := shutil.which(name):
            return found
    pytest.fail(
        "no Chromium found for the dashboard tests: `apt-get install -y chromium` (Debian), "
        "or set CHROMIUM_PATH to a Chromium or Chrome executable",
        pytrace=False,
    )


@contextmanager
def chromium() -> Iterator["Browser"]:
    """A headless Chromium, closed (with every context it opened) on the way out."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            f"Playwright is missing: `.venv/bin/pip install {PLAYWRIGHT_PIN}` "
            "(no `playwright install`: the system's Chromium is used)",
            pytrace=False,
        )
    path = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def page_errors(page: "Page") -> list[str]:
    """Uncaught script errors and console errors of the page (a Content-Security-Policy
    violation is one), collected as they happen. Refused requests are left out: the tests
    provoke some (a 422) and the page shows them itself."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    def console(message: "ConsoleMessage") -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(message.text)

    page.on("console", console)
    return errors


def sign_in(page: "Page", base_url: str, user: str) -> None:
    """Open the dashboard and sign in through its form; returns once it shows the snapshot."""
    from playwright.sync_api import expect

    page.goto(f"{base_url}/ui")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(PASSWORDS[user])
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#who")).to_have_text(user)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    expect(page.locator("#dashboard")).to_have_attribute("data-synced", "1")


@contextmanager
def signed_in(
    browser: "Browser", base_url: str, user: str, **options: Any
) -> Iterator[tuple["Page", list[str]]]:
    """A page of a new browser context (`options` open it) signed in as `user`, with its
    page_errors; the context is closed on the way out."""
    context = browser.new_context(**options)
    try:
        page = context.new_page()
        errors = page_errors(page)
        sign_in(page, base_url, user)
        yield page, errors
    finally:
        context.close()
