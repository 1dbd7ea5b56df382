"""Which Accept headers count as a browser's at the root (taskline.api.routes.stats)."""

import pytest

from taskline.api.routes.stats import prefers_html


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),  # Firefox
        ("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8", True),
        ("*/*", False),  # curl, httpx, requests
        ("", False),
        ("application/json", False),
        ("application/json, text/html", False),  # a tie keeps JSON
        ("text/html;q=0.5, application/json", False),
        ("text/*, application/json;q=0.1", True),
        ("text/html;q=oops, */*", False),  # a broken weight counts as 0
    ],
)
def test_only_an_accept_ranking_html_above_json_is_a_browser(accept: str, html: bool) -> None:
    assert prefers_html(accept) is html
