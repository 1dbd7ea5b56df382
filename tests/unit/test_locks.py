"""The locks pin every dependency with hashes, agree with the top-level lists and each other,
and are what the Makefile and the Dockerfile install."""

import re
from pathlib import Path

from tests.support import ROOT

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def top_level(path: Path) -> dict[str, str]:
    """The pins of a human-edited list, following its `-r` includes."""
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.startswith("-r "):
            pins |= top_level(path.parent / line.split(maxsplit=1)[1])
        elif match := PIN.match(line):
            pins[normal(match[1])] = match[2]
        else:
            assert not line.strip() or line.startswith("#"), f"{path.name}: unpinned {line!r}"
    return pins


def locked(path: Path) -> dict[str, tuple[str, int]]:
    """Per package of a lock: its version and how many hashes it carries."""
    entries: dict[str, tuple[str, int]] = {}
    name = ""
    for line in path.read_text().splitlines():
        if match := PIN.match(line):
            name = normal(match[1])
            entries[name] = (match[2], 0)
        elif line.strip().startswith("--hash=sha256:"):
            version, hashes = entries[name]
            entries[name] = (version, hashes + 1)
    return entries


def test_every_locked_package_is_pinned_with_hashes() -> None:
    for lock in ("requirements.lock", "requirements-dev.lock"):
        entries = locked(ROOT / lock)
        assert len(entries) > 40
        assert [name for name, (_, hashes) in entries.items() if not hashes] == [], lock


def test_the_locks_hold_the_top_level_pins() -> None:
    for listed, lock in (
        ("requirements.txt", "requirements.lock"),
        ("requirements-dev.txt", "requirements-dev.lock"),
    ):
        entries = locked(ROOT / lock)
        differing = {
            name: (version, entries.get(name, ("missing", 0))[0])
            for name, version in top_level(ROOT / listed).items()
            if entries.get(name, ("", 0))[0] != version
        }
        assert differing == {}, f"{lock} is stale: run `make lock`"


def test_the_development_lock_has_the_runtime_lock_as_it_is() -> None:
    runtime = locked(ROOT / "requirements.lock")
    development = locked(ROOT / "requirements-dev.lock")
    assert {name: development.get(name) for name in runtime} == runtime


def test_make_and_the_image_install_only_from_the_locks_with_hashes() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes" in makefile
    assert "-r requirements.lock" in makefile
    assert "-r requirements-dev.lock" in makefile
    assert "-r requirements.txt" not in makefile
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "--require-hashes" in dockerfile
    assert "-r requirements.lock" in dockerfile
    assert "requirements.txt" not in dockerfile
