"""The lines of a deployment: which task types run on which ordered queue (TASKLINE_LINES).

Each line is an ordered queue of its own, with its own active worker and standbys: a long
task on one line never holds up the tasks of another. Within a line, tasks still run one at
a time, by priority then submission.

The setting reads `LINE=TYPE,TYPE;LINE=*`: e.g. `slow=render,export;default=*`. Exactly one line
takes `*`, every task type no other line names; it is the *main* line, and it keeps
TASKLINE_QUEUE and the Redis keys a deployment had before lines, so an existing one goes on
unchanged. Every other line's queue is `{TASKLINE_QUEUE}.{line}` and its Redis sets are under
`{prefix}lines:{line}:`. Empty, the setting means one line, `default=*`.

A task stays on the line it was created on (its record names it): a changed map moves only
the tasks created after it.
"""

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

# The main line when the setting is empty.
DEFAULT_LINE = "default"
EVERY_TYPE = "*"
# A line's name: in queue names, Redis keys and URLs as it is.
LINE_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
LINE_NAME = re.compile(LINE_PATTERN)


class LinesError(ValueError):
    """TASKLINE_LINES cannot be read, or names a task type no package declares."""


@dataclass(frozen=True, slots=True)
class Line:
    """One ordered queue: its name, its RabbitMQ queue, and whether it is the main line."""

    name: str
    queue: str
    main: bool
    types: frozenset[str]  # the task types it names (the main line also takes the rest)


class Lines:
    """The lines in the order the setting gives them, and the line of each task type."""

    def __init__(self, lines: Iterable[Line]) -> None:
        self._lines = tuple(lines)
        self.main = next(line for line in self._lines if line.main)
        self._by_name = {line.name: line for line in self._lines}
        self._by_type = {t: line for line in self._lines for t in line.types}

    def __iter__(self) -> Iterator[Line]:
        return iter(self._lines)

    def __len__(self) -> int:
        return len(self._lines)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    @property
    def names(self) -> list[str]:
        return [line.name for line in self._lines]

    def of(self, task_type: str) -> Line:
        """The line new tasks of this type go to."""
        return self._by_type.get(task_type, self.main)

    def named(self, name: str) -> Line:
        """The line of this name; '' is the main line (a record made before lines)."""
        return self._by_name[name] if name else self.main

    def by_queue(self, queue: str) -> Line | None:
        return next((line for line in self._lines if line.queue == queue), None)

    def check(self, declared: Iterable[str]) -> None:
        """Every task type a line names is declared, or LinesError naming it."""
        known = set(declared)
        for line in self._lines:
            for task_type in sorted(line.types - known):
                raise LinesError(
                    f"TASKLINE_LINES: line {line.name!r} names task type {task_type!r}, which "
                    f"no task package declares (declared: {', '.join(sorted(known))}): fix the "
                    "name or remove it"
                )


def parse_lines(text: str, queue: str) -> Lines:
    """The lines of TASKLINE_LINES (`LINE=TYPE,TYPE;LINE=*`), each queue named from `queue`;
    LinesError saying what is wrong and how to write it."""
    how = "write LINE=TYPE,TYPE;LINE=*, e.g. slow=render,export;default=*"
    if not text.strip():
        return Lines([Line(DEFAULT_LINE, queue, True, frozenset())])
    found: dict[str, set[str]] = {}
    main = None
    placed: dict[str, str] = {}
    for entry in (part.strip() for part in text.split(";")):
        if not entry:
            continue
        name, equals, listed = (s.strip() for s in entry.partition("="))
        if not equals:
            raise LinesError(f"TASKLINE_LINES: {entry!r} has no '=': {how}")
        if not LINE_NAME.fullmatch(name):
            raise LinesError(
                f"TASKLINE_LINES: {name!r} is not a line name (lower-case letters, digits, "
                f"'_' and '-', at most 32, first a letter or digit): {how}"
            )
        if name in found:
            raise LinesError(f"TASKLINE_LINES: line {name!r} is given twice: {how}")
        types = {t.strip() for t in listed.split(",") if t.strip()}
        if not types:
            raise LinesError(f"TASKLINE_LINES: line {name!r} names no task type: {how}")
        if EVERY_TYPE in types:
            if main is not None:
                raise LinesError(
                    f"TASKLINE_LINES: lines {main!r} and {name!r} both take '*': one line "
                    "takes the task types the others do not name"
                )
            main = name
            types.discard(EVERY_TYPE)
        for task_type in types:
            if task_type in placed:
                raise LinesError(
                    f"TASKLINE_LINES: task type {task_type!r} is on two lines, "
                    f"{placed[task_type]!r} and {name!r}: a task type runs on one line"
                )
            placed[task_type] = name
        found[name] = types
    if main is None:
        raise LinesError(
            "TASKLINE_LINES: no line takes '*' (the task types no other line names, and the "
            f"queue {queue!r} of before): {how}"
        )
    return Lines(
        Line(name, queue if name == main else f"{queue}.{name}", name == main, frozenset(types))
        for name, types in found.items()
    )
