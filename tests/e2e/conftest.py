"""Fixtures the dashboard and docs tests share."""

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.ui_browser import chromium

if TYPE_CHECKING:
    from playwright.sync_api import Browser


@pytest.fixture(scope="module")
def browser() -> Iterator["Browser"]:
    """One headless Chromium per module; every `expect` waits up to 15 s."""
    with chromium() as browser:
        from playwright.sync_api import expect

        expect.set_options(timeout=15_000)
        yield browser
