"""The dashboard's explorer (#explore) and task page (#task/<id>), in headless Chromium
against a real stack: filter by state and name, page with the cursor, open a task and read its
params, timeline and result (a paged one too), retry a failure from its page, follow the line
health; cancel, retry and delete a selection in bulk (POST /tasks/bulk/*, each task's outcome
listed); a viewer sees no control that changes a task; a phone scrolls no wider than itself.

Screenshots go to the test's tmp directory; with UPDATE_SCREENSHOTS=1 also to
docs/screenshots/ (explorer.png, task-page.png).
"""

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.client import read, submit, wait_done
from tests.e2e.test_ui import DESKTOP, PHONE, UNLABELLED, save
from tests.processes import Stack
from tests.ui_browser import page_errors, sign_in, signed_in

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

# word_report fails its first `fail_attempts` attempts; its policy runs it 3 times at most.
FAILING = {"text": "the cat sat", "fail_attempts": 3}
FOUND = "#found > .found-row"


@pytest.fixture(scope="module")
def explorer_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of this module's own: the explorer lists no other test's tasks."""
    with Stack(tmp_path_factory.mktemp("explorer-stack")) as stack:
        stack.start()
        yield stack


@pytest.fixture(scope="module")
def tasks(explorer_stack: Stack) -> dict[str, object]:
    """Twelve finished reverses, a failed word_report, a paged generate_serials and a
    cancelled reverse."""
    with explorer_stack.client() as api:
        reverses = [submit(api, "reverse", {"text": f"text {n}"})["id"] for n in range(12)]
        for task_id in reverses:
            assert wait_done(api, task_id)["state"] == "SUCCESS"
        failed = submit(api, "word_report", FAILING)["id"]
        assert wait_done(api, failed, timeout=60)["state"] == "FAILURE"
        paged = {"code_model": "EX", "number": 0, "count": 2500}
        serials = submit(api, "generate_serials", paged)["id"]
        assert wait_done(api, serials)["state"] == "SUCCESS"
        cancelled = submit(api, "reverse", {"text": "never"}, not_before="2099-01-01T00:00:00Z")
        assert api.post(f"/tasks/{cancelled['id']}/cancel").status_code == 200
    return {
        "reverses": reverses,
        "failed": failed,
        "serials": serials,
        "cancelled": cancelled["id"],
    }


def explore(page: "Page") -> None:
    """The explorer, with its first query answered."""
    from playwright.sync_api import expect

    page.get_by_role("link", name="Explorer").click()
    expect(page.locator("#explorer")).to_be_visible()
    expect(page.locator("#explorer")).not_to_have_attribute("data-loading", "1")


def search(page: "Page") -> dict[str, list[str]]:
    """Submit the filter form; the query it sent, once its answer shows."""
    from playwright.sync_api import expect

    with page.expect_request(lambda r: urlsplit(r.url).path == "/tasks") as sent:
        page.get_by_role("button", name="Search").click()
    expect(page.locator("#explorer")).not_to_have_attribute("data-loading", "1")
    return parse_qs(urlsplit(sent.value.url).query)


def shown_ids(page: "Page") -> list[str]:
    return page.locator(FOUND).evaluate_all("rows => rows.map((r) => r.dataset.foundId)")


def no_wider_than_a_phone(page: "Page") -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width} px wide on a phone"


def test_the_explorer_filters_by_state_and_name_and_pages_with_the_cursor(
    browser: "Browser", explorer_stack: Stack, tasks: dict, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    with signed_in(browser, explorer_stack.url, "admin", viewport=DESKTOP) as (page, errors):
        explore(page)
        form = page.locator("#filter-form")

        # Every filter goes out as a query param; a multiple choice as repeated ones.
        form.get_by_label("FAILURE").check()
        form.get_by_label("CANCELLED").check()
        form.get_by_label("Id starts with").fill("ABC")
        sent = search(page)
        assert sent["state"] == ["FAILURE", "CANCELLED"] and sent["id_prefix"] == ["abc"]
        form.get_by_label("Id starts with").fill(tasks["cancelled"][:8])
        search(page)
        assert shown_ids(page) == [tasks["cancelled"]]
        page.get_by_role("button", name="Clear").click()
        expect(page.locator("#explorer")).not_to_have_attribute("data-loading", "1")

        # Either state: the cancelled reverse and the failed word_report, newest first.
        form.get_by_label("FAILURE").check()
        form.get_by_label("CANCELLED").check()
        search(page)
        assert shown_ids(page) == [tasks["cancelled"], tasks["failed"]]
        page.get_by_role("button", name="Clear").click()
        expect(page.locator("#explorer")).not_to_have_attribute("data-loading", "1")

        # FAILURE alone: the failed word_report, and it only.
        form.get_by_label("FAILURE").check()
        assert search(page)["state"] == ["FAILURE"]
        assert shown_ids(page) == [tasks["failed"]]
        expect(page.locator(FOUND).locator(".badge")).to_have_text("FAILURE")

        # SUCCESS reverses, ten a page: Older follows next_cursor, Newer comes back.
        form.get_by_label("FAILURE").uncheck()
        form.get_by_label("SUCCESS").check()
        form.get_by_label("Task type").select_option("reverse")
        form.get_by_label("Per page").select_option("10")
        sent = search(page)
        assert sent["state"] == ["SUCCESS"] and sent["name"] == ["reverse"]
        first = shown_ids(page)
        assert len(first) == 10
        expect(page.get_by_role("button", name="Newer")).to_be_disabled()
        page.get_by_role("button", name="Older").click()
        expect(page.locator("#page-number")).to_have_text("page 2")
        second = shown_ids(page)
        assert sorted(first + second) == sorted(tasks["reverses"])
        expect(page.get_by_role("button", name="Older")).to_be_disabled()
        page.get_by_role("button", name="Newer").click()
        expect(page.locator("#page-number")).to_have_text("page 1")
        assert shown_ids(page) == first
        assert page.evaluate(UNLABELLED) == []
        assert page.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]

        # The line health of the page's lines: depth, postponed, throughput, wait and run.
        # A reverse that ends now shows as throughput in a later sample.
        with explorer_stack.client() as api:
            wait_done(api, submit(api, "reverse", {"text": "counted"})["id"])
        health = page.locator("#health .health-line").first
        for title in ("depth", "postponed", "ended / min", "wait", "run"):
            expect(health.get_by_text(title, exact=True)).to_be_visible()
        ended = health.locator(".chart").filter(has_text="ended / min").locator("svg")
        expect(ended).to_have_attribute("aria-label", re.compile(r"peak [1-9]"), timeout=20_000)
        save(page, "explorer.png", tmp_path, full_page=True)
        assert errors == []


def test_a_task_page_shows_params_timeline_and_result_pages(
    browser: "Browser", explorer_stack: Stack, tasks: dict, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    with signed_in(browser, explorer_stack.url, "admin", viewport=DESKTOP) as (page, errors):
        # From the dashboard's own row.
        done = tasks["reverses"][-1]
        page.locator(f'#recent > [data-task-id="{done}"] a.name').click()
        view = page.locator("#task-view")
        expect(view).to_have_attribute("data-loaded", "SUCCESS")
        expect(view.locator(".params-json")).to_contain_text('"text": "text 11"')
        expect(view.locator(".result-json")).to_contain_text("11 txet")
        expect(view.locator('.timeline [data-change="created"] time')).not_to_be_empty()

        # A paged result, page by page.
        page.goto(f"{explorer_stack.url}/ui#task/{tasks['serials']}")
        expect(view).to_have_attribute("data-loaded", "SUCCESS")
        page.get_by_role("button", name="Next result page").click()
        expect(view.locator(".pager .hint")).to_have_text("page 1 of 3 · 1000 items")
        page.get_by_role("button", name="Next result page").click()
        expect(view.locator(".pager .hint")).to_have_text("page 2 of 3 · 1000 items")
        page.get_by_role("button", name="Next result page").click()
        expect(view.locator(".pager .hint")).to_have_text("page 3 of 3 · 500 items")
        assert page.evaluate(UNLABELLED) == []
        assert errors == []


def test_a_failed_task_is_retried_from_its_page(
    browser: "Browser", explorer_stack: Stack, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport=DESKTOP)
    phone = browser.new_context(viewport=PHONE, is_mobile=True)
    with explorer_stack.client() as api:
        try:
            failed = submit(api, "word_report", FAILING)["id"]
            assert wait_done(api, failed, timeout=60)["state"] == "FAILURE"
            page = context.new_page()
            errors = page_errors(page)
            sign_in(page, explorer_stack.url, "admin")
            explore(page)
            page.locator(f'{FOUND}[data-found-id="{failed}"] a.name').click()
            view = page.locator("#task-view")
            expect(view).to_have_attribute("data-loaded", "FAILURE")
            expect(view.locator(".task-error")).to_have_text(
                "FlakySourceError: attempt 3 fails on purpose"
            )
            view.get_by_text("Traceback", exact=True).click()
            expect(view.locator(".traceback pre")).to_contain_text("in word_report")
            expect(view.locator(".attempt-errors li")).to_have_count(2)
            save(page, "task-page.png", tmp_path, full_page=True)

            view.get_by_role("button", name="Retry").click()
            link = view.locator(".links li").filter(has_text="Retried by").locator("a")
            expect(link).to_be_visible()
            expect(view.get_by_role("button", name="Retry")).to_have_count(0)
            retry = read(api, failed)["retried_by"]
            assert retry and link.get_attribute("href") == f"#task/{retry}"
            expect(view.locator('.timeline [data-change="retried"]')).to_contain_text(retry)

            link.click()
            expect(view.locator(".links a").first).to_have_attribute("href", f"#task/{failed}")
            # The retry fails as its original did (same params); the page follows it live.
            expect(view).to_have_attribute("data-loaded", "FAILURE", timeout=60_000)
            assert errors == []

            small = phone.new_page()
            phone_errors = page_errors(small)
            sign_in(small, explorer_stack.url, "admin")
            small.goto(f"{explorer_stack.url}/ui#task/{failed}")
            expect(small.locator("#task-view")).to_have_attribute("data-loaded", "FAILURE")
            no_wider_than_a_phone(small)
            small.goto(f"{explorer_stack.url}/ui#explore")
            expect(small.locator(FOUND).first).to_be_visible()
            no_wider_than_a_phone(small)
            assert phone_errors == []
        finally:
            phone.close()
            context.close()


def test_a_viewer_sees_no_control_that_changes_a_task(
    browser: "Browser", explorer_stack: Stack, tasks: dict
) -> None:
    from playwright.sync_api import expect

    with signed_in(browser, explorer_stack.url, "carol", viewport=DESKTOP) as (page, errors):
        expect(page.locator("body")).to_have_attribute("data-role", "viewer")
        explore(page)
        expect(page.locator(FOUND).first).to_be_visible()
        expect(page.locator("#found .pick:visible, #select-page:visible")).to_have_count(0)
        expect(page.locator("[data-bulk]:visible")).to_have_count(0)
        expect(page.get_by_label("Owner")).to_be_hidden()

        page.goto(f"{explorer_stack.url}/ui#task/{tasks['failed']}")
        view = page.locator("#task-view")
        expect(view).to_have_attribute("data-loaded", "FAILURE")
        expect(view.locator(".params-json")).to_contain_text("the cat sat")
        # Not an action, a form nor an editor on the page.
        expect(view.locator("button:visible, form:visible, textarea:visible")).to_have_count(0)
        # A viewer is no admin: no traceback.
        expect(view.locator(".traceback")).to_have_count(0)
        assert errors == []


def test_the_selected_tasks_are_cancelled_retried_and_deleted_in_bulk(
    browser: "Browser", explorer_stack: Stack
) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport=DESKTOP)
    with explorer_stack.client() as api:
        try:
            soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
            held = [
                submit(api, "reverse", {"text": f"held {n}"}, not_before=soon)["id"]
                for n in range(3)
            ]
            page = context.new_page()
            errors = page_errors(page)
            sign_in(page, explorer_stack.url, "admin")
            explore(page)
            form = page.locator("#filter-form")
            form.get_by_label("SCHEDULED").check()
            form.get_by_label("Task type").select_option("reverse")
            search(page)
            assert sorted(shown_ids(page)) == sorted(held)
            report = page.locator("#bulk-report")

            # All on the page, cancelled: one line of the report each.
            page.get_by_label("Select all on this page").check()
            expect(page.locator("#selected-count")).to_have_text("3 selected")
            page.get_by_role("button", name="Cancel selected").click()
            expect(report.locator('[data-outcome="cancelled"]')).to_have_count(3)
            expect(page.locator(FOUND)).to_have_count(0)
            assert {read(api, task_id)["state"] for task_id in held} == {"CANCELLED"}

            # Two of them retried; then the first again, with a third: the first is refused
            # (it was retried already), the third retried.
            form.get_by_label("SCHEDULED").uncheck()
            form.get_by_label("CANCELLED").check()
            search(page)

            def pick(task_id: str) -> None:
                page.get_by_label(f"Select reverse {task_id[:8]}").check()

            pick(held[0])
            pick(held[1])
            page.get_by_role("button", name="Retry selected").click()
            expect(report.locator('[data-outcome="retried"]')).to_have_count(2)
            retried = read(api, held[0])["retried_by"]
            expect(report.locator(f'[data-id="{held[0]}"] a').last).to_have_attribute(
                "href", f"#task/{retried}"
            )
            pick(held[0])
            pick(held[2])
            page.get_by_role("button", name="Retry selected").click()
            refused = report.locator(f'[data-id="{held[0]}"][data-outcome="refused"]')
            expect(refused).to_contain_text("retried")
            expect(report.locator(f'[data-id="{held[2]}"]')).to_have_attribute(
                "data-outcome", "retried"
            )

            # Deleted, with a second click to confirm.
            for task_id in held:
                pick(task_id)
            page.get_by_role("button", name="Delete selected").click()
            page.get_by_role("button", name="Confirm delete of 3").click()
            expect(report.locator('[data-outcome="deleted"]')).to_have_count(3)
            for task_id in held:
                assert api.get(f"/tasks/{task_id}").status_code == 404
            assert errors == []
        finally:
            context.close()
