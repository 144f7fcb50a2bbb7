"""The package as a new user installs it: `pip install` of this checkout into a fresh venv,
from a folder outside the repository, then the `model-server` command serves.

The fresh venv borrows the project venv's installed dependencies (devtools.venvs) instead of
downloading them again: what is tested is this package's own build, its metadata, its
command and its import paths, not the dependencies' wheels."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from devtools.venvs import borrowing_venv
from server import __version__
from tests.servers import PROJECT_ROOT, free_port


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv with this checkout pip-installed into it (no editable link)."""
    root = tmp_path_factory.mktemp("fresh")
    python = borrowing_venv(root / "venv", with_pip=True)
    # What a source distribution holds, copied: a build writes build/ and *.egg-info beside
    # its sources, which must not land in the checkout.
    source = root / "source"
    for name in ("pyproject.toml", "README.md", *(p.name for p in PROJECT_ROOT.glob("req*.txt"))):
        source.mkdir(exist_ok=True)
        shutil.copy(PROJECT_ROOT / name, source / name)
    for package in ("server", "client"):
        ignore = shutil.ignore_patterns("__pycache__")
        shutil.copytree(PROJECT_ROOT / package, source / package, ignore=ignore)
    installed = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", str(source)],
        cwd=root, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return root


def _run(fresh: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = fresh / "venv" / "bin" / "model-server"
    return subprocess.run([command, *args], cwd=fresh, capture_output=True, text=True, timeout=60)


def test_the_command_says_its_version_and_help(fresh: Path) -> None:
    assert _run(fresh, "version").stdout.strip() == __version__
    helped = _run(fresh, "--help")
    assert helped.returncode == 0 and helped.stdout.startswith("usage: model-server")
    for command in ("serve", "trust", "version"):
        assert command in helped.stdout
    trusted = _run(fresh, "trust", "--help")
    assert trusted.returncode == 0 and "rotate" in trusted.stdout


def test_the_installed_package_serves_from_outside_the_repository(fresh: Path) -> None:
    python = fresh / "venv" / "bin" / "python"
    where = subprocess.run(
        [python, "-c", "import server, client; print(server.__file__, client.__file__)"],
        cwd=fresh, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert all(str(fresh / "venv") in path for path in where)  # the installed copy, not ours
    port = free_port()
    environment = {**os.environ, "MODELS_PATH": str(fresh / "models"), "PYTHONPATH": ""}
    command = [fresh / "venv" / "bin" / "model-server", "serve", "--port", str(port)]
    log = fresh / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=fresh, env=environment, stderr=output)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the installed server did not answer"
                time.sleep(0.1)
        assert answer.json() == {"status": "ok"}
        document = httpx.get(f"http://127.0.0.1:{port}/openapi.json").json()
        assert document["info"]["version"] == __version__
        assert httpx.get(f"http://127.0.0.1:{port}/ui").status_code == 200  # its templates
        assert httpx.get(f"http://127.0.0.1:{port}/ui/static/main.js").status_code == 200
        assert (fresh / "keys" / "model-signing.key").is_file()  # made where it was started
    finally:
        process.kill()
        process.wait(30)
    assert sys.executable not in where


def test_the_changelog_opens_with_this_version() -> None:
    """Issue 45, item 8: the version said 4.0.0 through two releases that changed the
    contract; each release is in CHANGELOG.md, newest first, with how to upgrade."""
    text = (PROJECT_ROOT / "CHANGELOG.md").read_text()
    releases = re.findall(r"^## (\S+)", text, re.MULTILINE)
    assert releases[0] == __version__ and __version__.split(".")[0] == "5"
    newest = text.split("\n## ")[1]
    assert "**To upgrade**" in newest and "**Added**" in newest
