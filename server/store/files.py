"""ModelStore: the files under MODELS_PATH.

A model `NAME` is two files: `NAME.joblib` (the estimator and its classes) and `NAME.json`
(its metadata). Both are written atomically (temporary file in the same directory, fsync,
`os.replace`), the metadata last: a model exists exactly when its metadata file does, so a
crash mid-write never leaves a half model that is listed. Temporary files start with a dot,
which no valid name does, and are cleaned up at start-up with any model file whose metadata
never got written.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import joblib

from server.errors import BrokenModel, InvalidInput, ModelNotFound

logger = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MODEL_SUFFIX = ".joblib"
METADATA_SUFFIX = ".json"
TEMP_SUFFIX = ".tmp"
BUNDLE_KEYS = frozenset({"estimator", "classes", "model_type", "n_features"})


def serialize(bundle: dict[str, Any]) -> bytes:
    """A model bundle as the bytes of its `.joblib` file (what a cluster worker sends back)."""
    buffer = io.BytesIO()
    joblib.dump(bundle, buffer)
    return buffer.getvalue()


def check_name(name: str) -> str:
    """Refuse any name that could escape the directory or clash with our own files."""
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidInput(
            f"invalid model name {name!r}: use 1 to 64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


class ModelStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    # -- paths ---------------------------------------------------------------------------
    def _path(self, name: str, suffix: str) -> Path:
        path = (self.root / f"{check_name(name)}{suffix}").resolve()
        if path.parent != self.root:  # belt and braces: the pattern already forbids this
            raise InvalidInput(f"invalid model name {name!r}")
        return path

    def model_path(self, name: str) -> Path:
        return self._path(name, MODEL_SUFFIX)

    def metadata_path(self, name: str) -> Path:
        return self._path(name, METADATA_SUFFIX)

    # -- start-up --------------------------------------------------------------------------
    def prepare(self) -> list[str]:
        """Create the directory and delete what an interrupted write left; returns the files."""
        self.root.mkdir(parents=True, exist_ok=True)
        leftovers = [
            p
            for p in self.root.iterdir()
            if p.name.startswith(".") and p.name.endswith(TEMP_SUFFIX)
        ]
        for model_file in self.root.glob(f"*{MODEL_SUFFIX}"):
            if not model_file.with_suffix(METADATA_SUFFIX).exists():
                leftovers.append(model_file)
        for path in leftovers:
            path.unlink(missing_ok=True)
            logger.warning("removed leftover of an interrupted write: %s", path.name)
        return sorted(p.name for p in leftovers)

    # -- writing (called in the training process) ------------------------------------------
    def _write_atomically(self, path: Path, write: Callable[[IO[bytes]], object]) -> None:
        temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}{TEMP_SUFFIX}")
        try:
            with open(temporary, "wb") as file:
                write(file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        directory = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(directory)  # make the rename itself durable
        finally:
            os.close(directory)

    def save(self, name: str, bundle: dict[str, Any], metadata: dict[str, Any]) -> dict[str, Any]:
        """Write the model, then its metadata (with `size_bytes`); returns the metadata."""
        return self._save(name, lambda file: joblib.dump(bundle, file), metadata)

    def save_serialized(self, name: str, model: bytes, metadata: dict[str, Any]) -> dict[str, Any]:
        """The same, for a model serialized elsewhere (by `serialize`, on a cluster worker)."""
        return self._save(name, lambda file: file.write(model), metadata)

    def _save(
        self, name: str, write_model: Callable[[IO[bytes]], object], metadata: dict[str, Any]
    ) -> dict[str, Any]:
        model_path = self.model_path(name)
        metadata_path = self.metadata_path(name)
        try:
            self._write_atomically(model_path, write_model)
            metadata = {**metadata, "size_bytes": model_path.stat().st_size}
            encoded = json.dumps(metadata).encode()
            self._write_atomically(metadata_path, lambda file: file.write(encoded))
        except BaseException:
            model_path.unlink(missing_ok=True)
            raise
        return metadata

    # -- reading -----------------------------------------------------------------------------
    def exists(self, name: str) -> bool:
        return self.metadata_path(name).is_file()

    def read_metadata(self, name: str) -> dict[str, Any]:
        path = self.metadata_path(name)
        try:
            metadata = json.loads(path.read_bytes())
        except FileNotFoundError:
            raise ModelNotFound(name) from None
        except (OSError, ValueError) as error:
            raise BrokenModel(f"model '{name}' has unreadable metadata: {error}") from None
        if not isinstance(metadata, dict):
            raise BrokenModel(f"model '{name}' has unreadable metadata: not an object")
        return metadata

    def describe(self, name: str) -> dict[str, Any]:
        """The model's metadata; a model whose files are damaged is described as
        `{"name", "status": "broken", "error"}` (plus what its metadata still tells)."""
        try:
            metadata = self.read_metadata(name)
        except BrokenModel as error:
            return {"name": name, "status": "broken", "error": error.detail}
        problem = self._model_file_problem(name, metadata)
        if problem is not None:
            return {**metadata, "status": "broken", "error": problem}
        return metadata

    def _model_file_problem(self, name: str, metadata: dict[str, Any]) -> str | None:
        """What a stat of the model file tells without reading it (that is /load's job)."""
        try:
            size = self.model_path(name).stat().st_size
        except FileNotFoundError:
            return f"model '{name}' has lost its model file"
        expected = metadata.get("size_bytes")
        if isinstance(expected, int) and size != expected:
            return f"model '{name}' has a model file of {size} bytes where {expected} were written"
        return None

    def list_models(self) -> list[dict[str, Any]]:
        """Every model, sorted by name, damaged ones described as such (never hidden)."""
        found = []
        for name in self.names():
            try:
                found.append(self.describe(name))
            except ModelNotFound:  # removed while we were listing
                continue
        return found

    def load(self, name: str) -> dict[str, Any]:
        """The saved bundle: estimator, classes (original labels), model_type, n_features."""
        problem = self._model_file_problem(name, self.read_metadata(name))
        if problem is not None:
            raise BrokenModel(problem)
        try:
            bundle = joblib.load(self.model_path(name))
        except FileNotFoundError:
            raise ModelNotFound(name) from None
        except Exception as error:  # a truncated or foreign file fails in many ways
            raise BrokenModel(
                f"model '{name}' can't be loaded: {type(error).__name__}: {error}"
            ) from None
        if not isinstance(bundle, dict) or not bundle.keys() >= BUNDLE_KEYS:
            raise BrokenModel(f"model '{name}' can't be loaded: not a model file of this service")
        return bundle

    def names(self) -> list[str]:
        """Every model that exists (its metadata file does), readable or not, sorted."""
        names = (
            path.name[: -len(METADATA_SUFFIX)] for path in self.root.glob(f"*{METADATA_SUFFIX}")
        )
        return sorted(name for name in names if NAME_PATTERN.fullmatch(name))

    # -- deleting ----------------------------------------------------------------------------
    def discard(self, name: str) -> None:
        """Remove whatever a stopped or crashed training of `name` left: temporary files,
        and the model itself if its write had got that far. Only for a name the caller holds
        (in training), so no finished model of anyone else's is touched."""
        self.metadata_path(name).unlink(missing_ok=True)
        self.model_path(name).unlink(missing_ok=True)
        for suffix in (MODEL_SUFFIX, METADATA_SUFFIX):
            for temporary in self.root.glob(f".{name}{suffix}.*{TEMP_SUFFIX}"):
                temporary.unlink(missing_ok=True)

    def delete(self, name: str) -> None:
        """Metadata first: from that instant the model no longer exists."""
        try:
            self.metadata_path(name).unlink()
        except FileNotFoundError:
            raise ModelNotFound(name) from None
        self.model_path(name).unlink(missing_ok=True)
