"""Where a model's files are under MODELS_PATH, and which names are allowed (see
server.store.files for the layout)."""

from __future__ import annotations

import re
from pathlib import Path

from server.errors import InvalidInput
from server.store.signing import SIGNATURE

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MODEL_SUFFIX = ".joblib"
ONNX_SUFFIX = ".onnx"
METADATA_SUFFIX = ".json"
VERSION_FILE_SUFFIXES = (MODEL_SUFFIX, ONNX_SUFFIX, METADATA_SUFFIX)
# Kept in the metadata file, never answered: the tags, and what serving needs of the check
# that the fit ran (server.inference.compiled.choice).
INTERNAL_KEYS = (SIGNATURE, "serving")
POINTERS = "pointers.json"
REMOVING_SUFFIX = ".removing"


def check_name(name: str) -> str:
    """Refuse any name that could escape the directory or clash with our own files."""
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidInput(
            f"invalid model name {name!r}: use 1 to 64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


def version_of(path: Path, suffix: str) -> int | None:
    stem = path.name[: -len(suffix)] if path.name.endswith(suffix) else ""
    return int(stem) if stem.isdigit() and not stem.startswith("0") else None
