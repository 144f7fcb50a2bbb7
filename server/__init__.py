"""The model server: train classifiers in worker processes and serve their predictions.

`__version__` is the package's, from `pyproject.toml` (its one home): read from the
installed package's metadata, or from the file itself in a checkout that was not installed.
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def _version() -> str:
    if PYPROJECT.is_file():  # a checkout: the file is the truth, even if installed earlier
        version: str = tomllib.loads(PYPROJECT.read_text())["project"]["version"]
        return version
    return metadata.version("model-server")


__version__ = _version()
