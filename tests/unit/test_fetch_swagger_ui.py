"""scripts/fetch_swagger_ui.py against a registry of the test's own (file:// URLs): it takes
only the locked tarball, only the files /docs needs from it, and writes nothing otherwise."""

import base64
import hashlib
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.support import ROOT

SCRIPT = ROOT / "scripts" / "fetch_swagger_ui.py"
TAKEN = (
    "swagger-ui-bundle.js",
    "swagger-ui.css",
    "favicon-32x32.png",
    "LICENSE",
    "NOTICE",
    "swagger-ui-bundle.js.LICENSE.txt",
)
COMMENT = "# the lock's own comment\n"


def tarball(files: dict[str, bytes]) -> bytes:
    """A package tarball as npm publishes it: every file under package/."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files.items():
            member = tarfile.TarInfo(f"package/{name}")
            member.size = len(content)
            archive.addfile(member, io.BytesIO(content))
    return buffer.getvalue()


def integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def publish(registry: Path, version: str, files: dict[str, bytes]) -> str:
    """The tarball and the version's metadata where the npm registry has them; its integrity."""
    data = tarball(files)
    (registry / "swagger-ui-dist" / "-").mkdir(parents=True, exist_ok=True)
    (registry / "swagger-ui-dist" / "-" / f"swagger-ui-dist-{version}.tgz").write_bytes(data)
    metadata = {"version": version, "dist": {"integrity": integrity(data)}}
    (registry / "swagger-ui-dist" / version).write_text(json.dumps(metadata))
    return integrity(data)


def fetch(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, SCRIPT, "--lock", tmp_path / "swagger-ui.lock"]
        + ["--dest", tmp_path / "swagger_ui", "--registry", (tmp_path / "registry").as_uri()]
        + list(arguments),
        capture_output=True,
        text=True,
    )


@pytest.fixture
def package() -> dict[str, bytes]:
    files = {name: f"{name} of 5.1.0".encode() for name in TAKEN}
    return files | {"index.html": b"not taken", "swagger-ui.js.map": b"not taken"}


def test_the_locked_tarball_gives_only_the_files_docs_needs(
    tmp_path: Path, package: dict[str, bytes]
) -> None:
    locked = publish(tmp_path / "registry", "5.1.0", package)
    (tmp_path / "swagger-ui.lock").write_text(f"{COMMENT}swagger-ui-dist 5.1.0 {locked}\n")
    result = fetch(tmp_path)
    assert result.returncode == 0, result.stderr
    dest = tmp_path / "swagger_ui"
    assert sorted(path.name for path in dest.iterdir()) == sorted([*TAKEN, ".pinned"])
    assert all((dest / name).read_bytes() == package[name] for name in TAKEN)
    assert (dest / ".pinned").read_text() == f"swagger-ui-dist 5.1.0 {locked}\n"


def test_a_tarball_without_the_locked_integrity_is_refused_and_nothing_changes(
    tmp_path: Path, package: dict[str, bytes]
) -> None:
    published = publish(tmp_path / "registry", "5.1.0", package)
    other = integrity(tarball({**package, "swagger-ui-bundle.js": b"another bundle"}))
    (tmp_path / "swagger-ui.lock").write_text(f"swagger-ui-dist 5.1.0 {other}\n")
    dest = tmp_path / "swagger_ui"
    dest.mkdir()
    (dest / "swagger-ui-bundle.js").write_text("fetched before")
    result = fetch(tmp_path)
    assert result.returncode == 1
    assert "does not have the integrity swagger-ui.lock holds" in result.stderr
    assert published in result.stderr  # what it got, to compare with the registry's
    assert [path.name for path in dest.iterdir()] == ["swagger-ui-bundle.js"]
    assert (dest / "swagger-ui-bundle.js").read_text() == "fetched before"


def test_a_tarball_lacking_a_needed_file_is_refused(
    tmp_path: Path, package: dict[str, bytes]
) -> None:
    del package["swagger-ui.css"]
    locked = publish(tmp_path / "registry", "5.1.0", package)
    (tmp_path / "swagger-ui.lock").write_text(f"swagger-ui-dist 5.1.0 {locked}\n")
    result = fetch(tmp_path)
    assert result.returncode == 1
    assert "the tarball has no swagger-ui.css" in result.stderr
    assert not (tmp_path / "swagger_ui").exists()


def test_a_lock_without_a_sha512_integrity_is_refused(
    tmp_path: Path, package: dict[str, bytes]
) -> None:
    publish(tmp_path / "registry", "5.1.0", package)
    sha1 = "sha1-" + base64.b64encode(hashlib.sha1(tarball(package)).digest()).decode()
    (tmp_path / "swagger-ui.lock").write_text(f"swagger-ui-dist 5.1.0 {sha1}\n")
    result = fetch(tmp_path)
    assert result.returncode == 1 and "must be a sha512 one" in result.stderr
    assert not (tmp_path / "swagger_ui").exists()


def test_pin_moves_the_lock_to_the_registrys_integrity_and_fetches(
    tmp_path: Path, package: dict[str, bytes]
) -> None:
    old = publish(tmp_path / "registry", "5.1.0", package)
    new = publish(tmp_path / "registry", "5.2.0", {**package, "swagger-ui.css": b"5.2.0"})
    lock = tmp_path / "swagger-ui.lock"
    lock.write_text(f"{COMMENT}swagger-ui-dist 5.1.0 {old}\n")
    result = fetch(tmp_path, "--pin", "5.2.0")
    assert result.returncode == 0, result.stderr
    assert lock.read_text() == f"{COMMENT}swagger-ui-dist 5.2.0 {new}\n"
    assert (tmp_path / "swagger_ui" / "swagger-ui.css").read_bytes() == b"5.2.0"


def test_the_lock_pins_a_swagger_ui_5_that_make_and_the_image_fetch() -> None:
    entries = [
        line.split()
        for line in (ROOT / "swagger-ui.lock").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    ((package, version, locked),) = entries
    assert package == "swagger-ui-dist"
    assert int(version.split(".")[0]) >= 5  # the first to draw OpenAPI 3.1, FastAPI's
    assert locked.startswith("sha512-") and len(base64.b64decode(locked[7:])) == 64
    assert "python3 scripts/fetch_swagger_ui.py" in (ROOT / "Makefile").read_text()
    assert "RUN python scripts/fetch_swagger_ui.py\n" in (ROOT / "Dockerfile").read_text()
    # The image's files are the ones it fetched, never a folder fetched outside it.
    assert "taskline/api/swagger_ui" in (ROOT / ".dockerignore").read_text().splitlines()
    assert "taskline/api/swagger_ui/" in (ROOT / ".gitignore").read_text().splitlines()
