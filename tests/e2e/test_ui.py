"""The dashboard at /ui, driven in headless Chromium against a real stack.

What a person would do: sign in, submit from the generated form, watch the bar and the pi
estimate move, line tasks up and postpone, reprioritise, cancel, release and delete them, and
sign out; a user sees none of the admin's tasks. Every change is checked on the page (which
only learns of it from GET /events) and again through the API.

Screenshots go to the test's tmp directory; with UPDATE_SCREENSHOTS=1 also to
docs/screenshots/ (the README shows them), so that a plain run leaves the repository as it was.
"""

import os
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.client import read, submit, wait_state
from tests.processes import Stack
from tests.support import ROOT
from tests.ui_browser import page_errors, sign_in
from tests.waiting import wait_until

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

SCREENSHOTS = ROOT / "docs" / "screenshots"
# Not UTC, so that the page's local-time inputs are seen to be converted.
TIMEZONE = "Asia/Kolkata"
TZ_OFFSET = timedelta(hours=5, minutes=30)
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# Not the defaults, so that the links are seen to follow the settings.
FLOWER_PORT, CONSOLE_PORT = 15555, 19001
ROWS = ".tasks > [data-task-id], .running > [data-task-id]"


@pytest.fixture(scope="module")
def ui_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of this module's own: the admin's page shows no other test's tasks."""
    ports = {"TASKLINE_FLOWER_PORT": str(FLOWER_PORT), "TASKLINE_CONSOLE_PORT": str(CONSOLE_PORT)}
    with Stack(tmp_path_factory.mktemp("ui-stack"), **ports) as stack:
        stack.start()
        yield stack


def save(page: "Page", name: str, tmp_path: Path, **options: object) -> None:
    """A screenshot in tmp_path, and in docs/screenshots when asked to update those."""
    path = tmp_path / name
    page.screenshot(path=str(path), **options)
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, SCREENSHOTS / name)


def percent(bar: "Locator") -> float:
    """How full the progress bar is, by its value and by the width drawn (they must agree)."""
    value, width = bar.evaluate(
        "bar => [Number(bar.getAttribute('aria-valuenow')),"
        " parseFloat(bar.querySelector('.fill').style.width) || 0]"
    )
    assert abs(value - width) < 0.2, (value, width)
    return value


# Every control has a label and every button a text, at all times (rows included).
UNLABELLED = """() => [
    ...[...document.querySelectorAll("input, select, textarea")]
        .filter((e) => !e.labels.length && !e.getAttribute("aria-label")),
    ...[...document.querySelectorAll("button")].filter((b) => !b.textContent.trim()),
].map((e) => e.outerHTML)"""


def later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


def test_admin_submits_watches_and_controls_the_line(
    browser: "Browser", ui_stack: Stack, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport=DESKTOP, timezone_id=TIMEZONE)
    phone = browser.new_context(viewport=PHONE, timezone_id=TIMEZONE, is_mobile=True)
    with ui_stack.client() as api:
        try:
            page = context.new_page()
            errors = page_errors(page)
            sign_in(page, ui_stack.url, "admin")
            for link, port in (("Flower", FLOWER_PORT), ("Console", CONSOLE_PORT)):
                expect(page.get_by_role("link", name=link)).to_have_attribute(
                    "href", f"http://127.0.0.1:{port}/"
                )

            # The form comes from the catalogue; the API's refusal shows inline.
            before = len(api.get("/tasks").json()["items"])
            page.get_by_label("Task", exact=True).select_option("leibniz_pi")
            expect(page.locator("#param-method")).to_have_value("series")
            page.locator("#param-digits").fill("11")
            page.get_by_role("button", name="Submit", exact=True).click()
            expect(page.locator("#submit-error")).to_contain_text("at most 10 digits")
            assert len(api.get("/tasks").json()["items"]) == before

            # A padded leibniz_pi from the form: the bar moves, the estimate shows.
            page.locator("#param-digits").fill("3")
            page.get_by_label("Delay seconds").fill("4")
            page.get_by_role("button", name="Submit", exact=True).click()
            status = page.locator("#submit-status")
            expect(status).to_contain_text("Submitted leibniz_pi")
            expect(page.locator("#submit-error")).to_be_empty()
            pi_id = status.get_attribute("data-task-id")
            card = page.locator(f'#running [data-task-id="{pi_id}"]')
            bar = card.get_by_role("progressbar")

            def midway() -> float | None:
                value = percent(bar)
                return value if 0 < value < 100 else None

            first = wait_until(midway, 20)
            wait_until(lambda: percent(bar) > first, 10)
            expect(card.locator(".intermediate")).to_have_text(re.compile(r"^3\.1"))
            expect(card.locator(".elapsed")).to_have_text(re.compile(r"^\d+\.\d s$"))
            done = page.locator(f'#recent [data-task-id="{pi_id}"]')
            expect(done.locator(".badge")).to_have_text("SUCCESS", timeout=30_000)
            expect(done.locator(".outcome")).to_contain_text('"pi":"3.141"')
            expect(card).to_have_count(0)
            assert read(api, pi_id)["params"] == {
                "digits": 3,
                "method": "series",
                "delay_seconds": 4.0,
            }

            # Three tasks wait behind a long run, in line order.
            busy = submit(api, "leibniz_pi", {"digits": 3}, delay_seconds=40)
            wait_state(api, busy["id"], {"STARTED", "PROGRESS"})
            postponed, cancelled, promoted = (
                submit(api, "reverse", {"text": text})["id"]
                for text in ("postpone me", "cancel me", "move me up")
            )
            serials = submit(
                api, "generate_serials", {"code_model": "UI", "number": 1, "count": 9}
            )["id"]

            def waiting(task_id: str):
                return page.locator(f'#waiting > [data-task-id="{task_id}"]')

            for position, task_id in enumerate((postponed, cancelled, promoted, serials), 1):
                expect(waiting(task_id).locator(".pos")).to_have_text(f"#{position}")
            expect(page.locator("#depth")).to_have_text("4")

            # Priority 9 takes a task to the front of the line.
            row = waiting(promoted)
            row.locator("summary").click()
            row.get_by_label("Priority").fill("9")
            row.get_by_role("button", name="Set priority").click()
            expect(waiting(promoted).locator(".pos")).to_have_text("#1")
            expect(waiting(postponed).locator(".pos")).to_have_text("#2")
            assert read(api, promoted)["priority"] == 9

            # Postponed to a local time an hour ahead: listed under postponed, due then.
            when = (datetime.now(UTC) + TZ_OFFSET + timedelta(hours=1)).replace(
                second=0, microsecond=0, tzinfo=None
            )
            row = waiting(postponed)
            row.locator("summary").click()
            row.get_by_label("Postpone until").fill(when.strftime("%Y-%m-%dT%H:%M"))
            row.get_by_role("button", name="Postpone").click()
            held = page.locator(f'#postponed > [data-task-id="{postponed}"]')
            expect(held.locator(".badge")).to_have_text("SCHEDULED")
            expect(held.locator(".meta")).to_contain_text(re.compile(r"· in \d+ (min|h)"))
            expect(waiting(postponed)).to_have_count(0)
            task = read(api, postponed)
            assert task["state"] == "SCHEDULED"
            assert datetime.fromisoformat(task["not_before"]) == (when - TZ_OFFSET).replace(
                tzinfo=UTC
            )

            # Cancelled while waiting: it ends CANCELLED at once, never having run.
            waiting(cancelled).get_by_role("button", name="Cancel").click()
            gone = page.locator(f'#recent > [data-task-id="{cancelled}"]')
            expect(gone.locator(".badge")).to_have_text("CANCELLED")
            expect(gone.locator(".meta")).to_contain_text("never ran")
            expect(waiting(cancelled)).to_have_count(0)
            assert read(api, cancelled)["state"] == "CANCELLED"

            # The dashboard with something in every list, at desktop and at phone width.
            running = page.locator(f'#running [data-task-id="{busy["id"]}"]')
            expect(running.locator(".intermediate")).to_have_text(re.compile(r"^3\.1"))
            wait_until(lambda: percent(running.get_by_role("progressbar")) > 10, 20)
            save(page, "dashboard.png", tmp_path, full_page=True)
            assert page.evaluate(UNLABELLED) == []
            small = phone.new_page()
            phone_errors = page_errors(small)
            sign_in(small, ui_stack.url, "admin")
            expect(small.locator(f'#running [data-task-id="{busy["id"]}"]')).to_be_visible()
            expect(small.locator(f'#postponed > [data-task-id="{postponed}"]')).to_be_visible()
            overflow = small.evaluate("document.documentElement.scrollWidth")
            assert overflow <= PHONE["width"], f"the page is {overflow} px wide on a phone"
            save(small, "dashboard-phone.png", tmp_path)
            assert small.locator("#cpu .chart").count() >= 1
            assert phone_errors == []

            # The running task cancelled from its card; the postponed one brought back to run.
            running.get_by_role("button", name="Cancel").click()
            stopped = page.locator(f'#recent > [data-task-id="{busy["id"]}"]')
            expect(stopped.locator(".badge")).to_have_text("CANCELLED")
            held.get_by_role("button", name="Run now").click()
            ran = page.locator(f'#recent > [data-task-id="{postponed}"]')
            expect(ran.locator(".badge")).to_have_text("SUCCESS")
            expect(ran.locator(".outcome")).to_contain_text("em enoptsop")

            # Deleting takes two clicks; the task is then gone from the page and the API.
            gone.get_by_role("button", name="Delete").click()
            gone.get_by_role("button", name="Confirm delete").click()
            expect(gone).to_have_count(0)
            assert api.get(f"/tasks/{cancelled}").status_code == 404
            assert errors == []
        finally:
            phone.close()
            context.close()


def test_a_failed_or_cancelled_task_is_retried_once_from_its_row(
    browser: "Browser", ui_stack: Stack
) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport=DESKTOP)
    with ui_stack.client() as admin:
        try:
            fine = submit(admin, "reverse", {"text": "fine"})["id"]
            wait_state(admin, fine, {"SUCCESS"})
            dropped = submit(admin, "reverse", {"text": "dropped"}, not_before=later(hours=1))
            assert admin.post(f"/tasks/{dropped['id']}/cancel").status_code == 200

            page = context.new_page()
            errors = page_errors(page)
            sign_in(page, ui_stack.url, "admin")
            row = page.locator(f'#recent > [data-task-id="{dropped["id"]}"]')
            expect(row.locator(".badge")).to_have_text("CANCELLED")
            succeeded = page.locator(f'#recent > [data-task-id="{fine}"]')
            expect(succeeded.get_by_role("button", name="Retry")).to_be_hidden()

            row.get_by_role("button", name="Retry").click()
            expect(row.get_by_role("button", name="Retry")).to_be_hidden()
            expect(row.locator(".meta")).to_contain_text("retried as")
            retry = read(admin, dropped["id"])["retried_by"]
            assert retry and read(admin, retry)["retry_of"] == dropped["id"]
            again = page.locator(f'#recent > [data-task-id="{retry}"]')
            expect(again.locator(".badge")).to_have_text("SUCCESS")
            expect(again.get_by_role("button", name="Retry")).to_be_hidden()
            assert errors == []
        finally:
            context.close()


def test_a_user_sees_only_their_own_tasks_and_signs_out(
    browser: "Browser", ui_stack: Stack
) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport=DESKTOP)
    with ui_stack.client() as admin, ui_stack.client("alice") as alice:
        try:
            # The admin's tasks: one finished, one postponed (both in a snapshot), one later.
            finished = submit(admin, "reverse", {"text": "admin's"})["id"]
            wait_state(admin, finished, {"SUCCESS"})
            held = submit(admin, "reverse", {"text": "admin's"}, not_before=later(hours=1))["id"]
            early = submit(alice, "reverse", {"text": "alice's"}, not_before=later(hours=1))["id"]

            page = context.new_page()
            errors = page_errors(page)
            sign_in(page, ui_stack.url, "alice")
            expect(page.locator(f'#postponed > [data-task-id="{early}"]')).to_be_visible()

            # Live: the admin's new task would come before alice's next one, if at all.
            live = submit(admin, "reverse", {"text": "admin's"}, not_before=later(hours=1))["id"]
            mine = submit(alice, "reverse", {"text": "alice's"})["id"]
            expect(page.locator(f'#recent > [data-task-id="{mine}"] .badge')).to_have_text(
                "SUCCESS"
            )
            html = page.content()
            for task_id in (finished, held, live):
                assert task_id not in html
            assert "by admin" not in page.locator("#dashboard").inner_text()
            assert page.locator(ROWS).count() == 2

            # Signing out forgets the token here and revokes it at the API.
            token = page.evaluate("sessionStorage.getItem('taskline.token')")
            assert token
            page.get_by_role("button", name="Sign out").click()
            expect(page.get_by_role("button", name="Sign in")).to_be_visible()
            expect(page.locator(ROWS)).to_have_count(0)
            assert page.evaluate("sessionStorage.getItem('taskline.token')") is None

            def refused() -> bool:
                bearer = {"Authorization": f"Bearer {token}"}
                return httpx.get(f"{ui_stack.url}/tasks", headers=bearer).status_code == 401

            wait_until(refused, 5, interval=0.05)
            assert errors == []
        finally:
            context.close()


def test_a_viewer_sees_every_task_and_no_control_that_changes_one(
    browser: "Browser", ui_stack: Stack
) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport=DESKTOP)
    with ui_stack.client("alice") as alice:
        try:
            held = submit(alice, "reverse", {"text": "alice's"}, not_before=later(hours=1))["id"]
            dropped = submit(alice, "reverse", {"text": "dropped"}, not_before=later(hours=1))
            assert alice.post(f"/tasks/{dropped['id']}/cancel").status_code == 200

            page = context.new_page()
            errors = page_errors(page)
            sign_in(page, ui_stack.url, "carol")
            expect(page.locator("body")).to_have_attribute("data-role", "viewer")
            expect(page.locator("#role")).to_have_text("(viewer: read only)")
            postponed = page.locator(f'#postponed > [data-task-id="{held}"]')
            expect(postponed.locator(".owner")).to_have_text("by alice")
            cancelled = page.locator(f'#recent > [data-task-id="{dropped["id"]}"]')
            expect(cancelled.locator(".badge")).to_have_text("CANCELLED")
            # Live: a task alice submits now shows too.
            later_one = submit(alice, "reverse", {"text": "later"}, not_before=later(hours=2))
            expect(page.locator(f'[data-task-id="{later_one["id"]}"]')).to_be_visible()

            expect(page.locator("#submit-form")).to_be_hidden()
            for name in ("Cancel", "Run now", "Delete", "Retry", "Postpone", "Set priority"):
                expect(page.locator(ROWS).get_by_role("button", name=name)).to_have_count(0)
            # Not a button nor an editor anywhere on the dashboard (signing out is above it).
            expect(page.locator("#dashboard button:visible")).to_have_count(0)
            expect(
                page.locator("#dashboard details:visible, #dashboard form:visible")
            ).to_have_count(0)
            expect(page.get_by_role("button", name="Sign out")).to_be_visible()
            assert errors == []
            for task in (held, later_one["id"]):
                assert alice.post(f"/tasks/{task}/cancel").status_code == 200
        finally:
            context.close()


def test_the_workers_card_shows_the_active_worker_and_its_standby(
    browser: "Browser", ui_stack: Stack
) -> None:
    from playwright.sync_api import expect

    ui_stack.start("worker-standby")
    context = browser.new_context(viewport=PHONE, is_mobile=True)
    try:
        with ui_stack.client() as admin:
            busy = submit(admin, "reverse", {"text": "busy"}, delay_seconds=4)["id"]
            wait_state(admin, busy, {"STARTED", "PROGRESS"})
            page = context.new_page()
            errors = page_errors(page)
            sign_in(page, ui_stack.url, "admin")
            # Refreshed every 2 s, as the workers report at their heartbeats.
            active = page.locator('#workers > [data-role="active"]')
            expect(active.locator("code.id")).to_have_attribute("title", busy, timeout=10_000)
            expect(page.locator('#workers > [data-role="standby"]')).to_have_count(1)
            expect(page.locator("#workers-count")).to_have_text("2")
            shown = admin.get("/workers").json()
            node = active.locator(".node").inner_text()
            assert node == shown["active"]
            assert ui_stack.settings.queue in active.inner_text()
            for meter in ("CPU", "memory", "disk /"):
                expect(active.get_by_text(meter, exact=True)).to_be_visible()
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            assert errors == []
            wait_state(admin, busy, {"SUCCESS"})
    finally:
        context.close()
        ui_stack.stop("worker-standby")


def test_the_running_task_shows_its_expected_end_and_a_waiting_one_its_start(
    browser: "Browser", ui_stack: Stack, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport=DESKTOP)
    try:
        with ui_stack.client() as admin:
            busy = submit(admin, "reverse", {"text": "busy"}, delay_seconds=8)["id"]
            wait_state(admin, busy, {"STARTED", "PROGRESS"})
            after = submit(admin, "reverse", {"text": "after"}, delay_seconds=1)["id"]
            page = context.new_page()
            errors = page_errors(page)
            sign_in(page, ui_stack.url, "admin")
            # Read with the host's figures, every 2 s.
            clock = r"~\d{1,2}:\d\d:\d\d(\s?[AP]M)?"  # the browser's local time
            running = page.locator(f'.running-task[data-task-id="{busy}"] .eta')
            expect(running).to_have_text(re.compile(rf"^{clock}"), timeout=10_000)
            waiting = page.locator(f'#waiting [data-task-id="{after}"] .meta')
            expect(waiting).to_contain_text(re.compile(rf"starts {clock}, ends {clock}"))
            save(page, "expected-times.png", tmp_path)
            assert errors == []
            wait_state(admin, after, {"SUCCESS"})
    finally:
        context.close()
