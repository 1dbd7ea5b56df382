"""Previews in the API: a task's large parts cut short where many tasks go out together.

A listing (`GET /tasks`, `GET /queue`), the snapshot of `GET /events` and its task events carry
`params`, `progress`, `result`, `error` and `errors` cut to a few KB each (core.previews), marked
`truncated: true`, with the task's own URL (`links.self`, `links.result`) for the whole. The
cut shrinks with the page size, so that one page stays under 1 MiB whatever is stored.
"""

from typing import Any

from taskline.core.previews import cut
from taskline.core.settings import Settings

# The parts of a task that may be cut; a page's budget is shared among them.
CUT_FIELDS = ("params", "progress", "result", "error", "errors")


def budget(settings: Settings, items: int) -> int:
    """Bytes each cut part of a task may take when up to `items` tasks go out together."""
    share = settings.page_preview_bytes // (max(items, 1) * len(CUT_FIELDS))
    return min(settings.preview_bytes, share)


def preview_event(data: dict[str, Any], limit: int) -> dict[str, Any]:
    """A task event's data with its large parts cut; once cut, `truncated` and the links to
    the whole task and its result."""
    truncated = bool(data.get("truncated"))
    for name in CUT_FIELDS:
        if data.get(name) is not None:
            data[name], was_cut = cut(data[name], limit)
            truncated = truncated or was_cut
    if truncated:
        link = f"/tasks/{data.get('id', '')}"
        data["truncated"] = True
        data["links"] = {"self": link, "result": f"{link}/result"}
    return data
