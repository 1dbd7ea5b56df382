"""Fetch Swagger UI's files for /docs from the npm registry, checked against swagger-ui.lock.

FastAPI's own /docs page loads swagger-ui-dist from a CDN; the API serves these files itself
instead (taskline/api/routes/docs.py), so /docs works without the internet. swagger-ui.lock
pins one version with the sha512 integrity the registry published for its tarball: a tarball
without that digest is refused and nothing is written. Only the files the page needs, and the
licence texts that go with them, are taken from it, into taskline/api/swagger_ui/ (git-ignored);
`.pinned` there, written last, holds the lock's entry they came from.

Run by make (before the virtual environment's step) and by the Dockerfile. `--pin VERSION`
moves the lock to another version, its integrity read from the registry's metadata, then
fetches it. Standard library only: it runs before the virtual environment exists.
"""

import argparse
import base64
import hashlib
import io
import json
import os
import sys
import tarfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "swagger-ui.lock"
DEST = ROOT / "taskline" / "api" / "swagger_ui"
REGISTRY = "https://registry.npmjs.org"
# What /docs serves, and the licence (Apache-2.0: LICENSE and NOTICE go with the files) with
# the bundled libraries' notices, which the bundle names.
FILES = (
    "swagger-ui-bundle.js",
    "swagger-ui.css",
    "favicon-32x32.png",
    "LICENSE",
    "NOTICE",
    "swagger-ui-bundle.js.LICENSE.txt",
)
STAMP = ".pinned"
TIMEOUT_SECONDS = 60


class RefusedError(Exception):
    """The lock, the registry or the tarball is not as expected: nothing was written."""


class Pin(NamedTuple):
    package: str
    version: str
    integrity: str  # npm's form: "sha512-" and the digest in base64

    @property
    def entry(self) -> str:
        return f"{self.package} {self.version} {self.integrity}"


def read_lock(lock: Path) -> Pin:
    """The lock's one entry: `package version sha512-…` (lines starting with # are comments)."""
    entries = [
        line.split()
        for line in lock.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if len(entries) != 1 or len(entries[0]) != 3:
        raise RefusedError(f"{lock} must hold one line `package version sha512-…`")
    pin = Pin(*entries[0])
    if not pin.integrity.startswith("sha512-"):
        raise RefusedError(f"{lock}: the integrity must be a sha512 one, not {pin.integrity}")
    return pin


def integrity_of(data: bytes) -> str:
    """The integrity npm publishes for a tarball of these bytes."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def download(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as answer:
            data: bytes = answer.read()
            return data
    except (urllib.error.URLError, OSError) as error:
        raise RefusedError(f"cannot fetch {url}: {error}") from error


def tarball_url(registry: str, pin: Pin) -> str:
    name = pin.package.rsplit("/", 1)[-1]  # a scoped package's tarball drops the scope
    return f"{registry}/{pin.package}/-/{name}-{pin.version}.tgz"


def files_of(tarball: bytes) -> dict[str, bytes]:
    """FILES, read from the package's folder in the tarball (nothing else is extracted)."""
    found: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        for name in FILES:
            try:
                member = archive.getmember(f"package/{name}")
            except KeyError:
                continue
            content = archive.extractfile(member) if member.isfile() else None
            if content is not None:
                found[name] = content.read()
    missing = [name for name in FILES if name not in found]
    if missing:
        raise RefusedError(f"the tarball has no {', '.join(missing)}")
    return found


def install(files: dict[str, bytes], dest: Path, pin: Pin) -> None:
    """Each file replaced whole (a running API never serves half of one); the stamp last.
    Readable by all whatever the umask: the image fetches as root, the API runs as taskline."""
    dest.mkdir(parents=True, exist_ok=True)
    dest.chmod(0o755)
    for name, content in [*files.items(), (STAMP, f"{pin.entry}\n".encode())]:
        partial = dest / f".{name}.partial"
        partial.write_bytes(content)
        partial.chmod(0o644)
        os.replace(partial, dest / name)


def fetch(lock: Path, dest: Path, registry: str) -> Pin:
    pin = read_lock(lock)
    url = tarball_url(registry, pin)
    tarball = download(url)
    if integrity_of(tarball) != pin.integrity:
        raise RefusedError(
            f"{url} does not have the integrity {lock.name} holds: it was changed or "
            f"substituted (got {integrity_of(tarball)})"
        )
    install(files_of(tarball), dest, pin)
    return pin


def pin_version(lock: Path, registry: str, version: str) -> Pin:
    """Point the lock at `version`, with the integrity the registry's metadata gives it; the
    lock's comments are kept."""
    package = read_lock(lock).package
    url = f"{registry}/{package}/{version}"
    try:
        integrity = json.loads(download(url))["dist"]["integrity"]
    except (ValueError, KeyError, TypeError) as error:
        raise RefusedError(f"{url} holds no dist.integrity") from error
    pin = Pin(package, version, integrity)
    if not integrity.startswith("sha512-"):
        raise RefusedError(f"{url}: the registry gives no sha512 integrity ({integrity})")
    comments = [line for line in lock.read_text().splitlines() if line.lstrip().startswith("#")]
    lock.write_text("\n".join([*comments, pin.entry]) + "\n")
    return pin


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lock", type=Path, default=LOCK)
    parser.add_argument("--dest", type=Path, default=DEST)
    parser.add_argument("--registry", default=REGISTRY)
    parser.add_argument("--pin", metavar="VERSION", help="move the lock to this version first")
    args = parser.parse_args(argv)
    registry = args.registry.rstrip("/")
    try:
        if args.pin:
            pin_version(args.lock, registry, args.pin)
        pin = fetch(args.lock, args.dest, registry)
    except RefusedError as refusal:
        print(f"Swagger UI for /docs not installed: {refusal}", file=sys.stderr)
        return 1
    print(f"Swagger UI for /docs: {pin.package} {pin.version} in {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
