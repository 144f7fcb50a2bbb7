"""Other commits of this project, served beside the current one: a git worktree of a commit,
and the service at a commit on a copy of a store (bench/ceiling.py, profile.py, hostile.py)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from devtools.local_server import PROJECT_ROOT, key_file_of, uvicorn_server


@contextmanager
def worktree(commit: str, directory: Path) -> Iterator[Path | None]:
    """The project at `commit`, checked out beside it; None where git cannot (no history)."""
    path = directory / "previous"
    made = subprocess.run(
        ["git", "worktree", "add", "--detach", str(path), commit],
        cwd=PROJECT_ROOT,
        capture_output=True,
    )
    if made.returncode != 0:
        yield None
        return
    try:
        yield path
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(path)], cwd=PROJECT_ROOT, check=False
        )


@contextmanager
def service_at(
    commit: str, directory: Path, models: Path, names: list[str]
) -> Iterator[tuple[str, int]]:
    """The service at `commit` (same store layout and key), its models loaded."""
    with worktree(commit, directory / "before-tree") as checkout:
        assert checkout is not None, f"git cannot check out {commit}"
        copy = directory / "before-models"
        shutil.copytree(models, copy)
        env = {"ACCESS_LOG": "text", "MAX_INFERENCE_MODELS": "5"}
        env["MODEL_SIGNING_KEY_FILE"] = str(key_file_of(models))
        log = directory / "before.log"
        with uvicorn_server(copy, env=env, log=log, cwd=checkout) as (url, process):
            with httpx.Client(base_url=url, timeout=60) as client:
                for name in names:
                    assert client.post("/load", json={"config": {"name": name}}).status_code == 200
            yield url, process.pid
