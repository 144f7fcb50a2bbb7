"""MkDocs hook (mkdocs.yml `hooks:`): the site's name carries the package's version, read
from pyproject.toml, its one home."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def on_config(config: Any) -> Any:
    version = tomllib.loads(PYPROJECT.read_text())["project"]["version"]
    config["site_name"] = f"Model server {version}"
    config["extra"]["version"] = version
    return config
