"""ModelStore: the files under MODELS_PATH, a folder per model name.

    MODELS_PATH/
      churn/
        pointers.json   the current version, the aliases and their history (server.store.pointers)
        1.joblib        version 1: the estimator, its classes and its compiled copy
        1.json          version 1: its metadata, written last
        2.joblib
        2.json

Every file is written atomically (server.store.atomic). A version exists exactly when its
metadata file does, so a crash mid-write never leaves a half version that is listed; a name
exists exactly when its pointers file does, and the pointers only ever name versions that
exist (they are written after the version, and a version is deleted only when no pointer
names it). At start-up, `server.store.recovery.prepare` removes what interrupted writes
left and moves models saved by v2 (`NAME.joblib` and `NAME.json` side by side) into
version 1 of their name.
The next issue's signatures and ONNX copies become more files per version (`1.sig`, `1.onnx`).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import joblib

from server.errors import BrokenModel, InvalidInput, ModelNotFound
from server.store.atomic import is_temporary, write_atomically
from server.store.pointers import Pointers, first

logger = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MODEL_SUFFIX = ".joblib"
METADATA_SUFFIX = ".json"
POINTERS = "pointers.json"
REMOVING_SUFFIX = ".removing"
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
    def name_dir(self, name: str) -> Path:
        path = (self.root / check_name(name)).resolve()
        if path.parent != self.root:  # belt and braces: the pattern already forbids this
            raise InvalidInput(f"invalid model name {name!r}")
        return path

    def model_path(self, name: str, version: int) -> Path:
        return self.name_dir(name) / f"{version}{MODEL_SUFFIX}"

    def metadata_path(self, name: str, version: int) -> Path:
        return self.name_dir(name) / f"{version}{METADATA_SUFFIX}"

    def pointers_path(self, name: str) -> Path:
        return self.name_dir(name) / POINTERS

    # -- writing (called in the training process) ------------------------------------------
    def save(
        self, name: str, version: int, bundle: dict[str, Any], metadata: dict[str, Any]
    ) -> dict[str, Any]:
        """Write the version's model, then its metadata (with `size_bytes`); the first
        version of a name becomes its current one. Returns the metadata."""
        return self._save(name, version, lambda file: joblib.dump(bundle, file), metadata)

    def save_serialized(
        self, name: str, version: int, model: bytes, metadata: dict[str, Any]
    ) -> dict[str, Any]:
        """The same, for a model serialized elsewhere (by `serialize`, on a cluster worker)."""
        return self._save(name, version, lambda file: file.write(model), metadata)

    def _save(
        self,
        name: str,
        version: int,
        write_model: Callable[[IO[bytes]], object],
        metadata: dict[str, Any],
    ) -> dict[str, Any]:
        model_path = self.model_path(name, version)
        metadata_path = self.metadata_path(name, version)
        try:
            model_path.parent.mkdir(exist_ok=True)
            write_atomically(model_path, write_model)
            metadata = {**metadata, "version": version, "size_bytes": model_path.stat().st_size}
            encoded = json.dumps(metadata).encode()
            write_atomically(metadata_path, lambda file: file.write(encoded))
            if not self.exists(name):
                self.write_pointers(name, first(version))
        except BaseException:
            metadata_path.unlink(missing_ok=True)
            model_path.unlink(missing_ok=True)
            if not self.exists(name):  # the name's first version: no folder left either
                with contextlib.suppress(OSError):
                    model_path.parent.rmdir()
            raise
        return metadata

    def write_pointers(self, name: str, pointers: Pointers) -> None:
        encoded = json.dumps(pointers.to_json()).encode()
        write_atomically(self.pointers_path(name), lambda file: file.write(encoded))

    # -- reading -----------------------------------------------------------------------------
    def exists(self, name: str) -> bool:
        return self.pointers_path(name).is_file()

    def read_pointers(self, name: str) -> Pointers:
        try:
            return Pointers.from_json(json.loads(self.pointers_path(name).read_bytes()))
        except FileNotFoundError:
            raise ModelNotFound(name) from None
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise BrokenModel(f"model '{name}' has an unreadable {POINTERS}: {error}") from None

    def versions(self, name: str) -> list[int]:
        """The versions of `name` that exist (their metadata file does), in order."""
        try:
            files = list(self.name_dir(name).iterdir())
        except (FileNotFoundError, NotADirectoryError):
            return []
        found = (_version_of(path, METADATA_SUFFIX) for path in files)
        return sorted(version for version in found if version is not None)

    def next_version(self, name: str, pointers: Pointers | None) -> int:
        """One above every version that exists or ever had a pointer: numbers are not reused."""
        seen = set(self.versions(name))
        if pointers is not None:
            for move in pointers.history:
                seen.update(v for v in (move.before, move.after) if v is not None)
        return max(seen, default=0) + 1

    def read_metadata(self, name: str, version: int) -> dict[str, Any]:
        path = self.metadata_path(name, version)
        try:
            metadata = json.loads(path.read_bytes())
        except FileNotFoundError:
            raise ModelNotFound(name, version) from None
        except (OSError, ValueError) as error:
            raise BrokenModel(f"model '{name}' has unreadable metadata: {error}") from None
        if not isinstance(metadata, dict):
            raise BrokenModel(f"model '{name}' has unreadable metadata: not an object")
        return {**metadata, "name": name, "version": version}

    def describe(self, name: str, version: int) -> dict[str, Any]:
        """The version's metadata; one whose files are damaged is described as
        `{"name", "version", "status": "broken", "error"}` (plus what its metadata tells)."""
        try:
            metadata = self.read_metadata(name, version)
        except BrokenModel as error:
            return {"name": name, "version": version, "status": "broken", "error": error.detail}
        problem = self._model_file_problem(name, version, metadata)
        if problem is not None:
            return {**metadata, "status": "broken", "error": problem}
        return metadata

    def _model_file_problem(self, name: str, version: int, metadata: dict[str, Any]) -> str | None:
        """What a stat of the model file tells without reading it (that is /load's job)."""
        try:
            size = self.model_path(name, version).stat().st_size
        except FileNotFoundError:
            return f"model '{name}' has lost its model file"
        expected = metadata.get("size_bytes")
        if isinstance(expected, int) and size != expected:
            return f"model '{name}' has a model file of {size} bytes where {expected} were written"
        return None

    def load(self, name: str, version: int) -> dict[str, Any]:
        """The saved bundle: estimator, classes (original labels), model_type, n_features."""
        problem = self._model_file_problem(name, version, self.read_metadata(name, version))
        if problem is not None:
            raise BrokenModel(problem)
        try:
            bundle = joblib.load(self.model_path(name, version))
        except FileNotFoundError:
            raise ModelNotFound(name, version) from None
        except Exception as error:  # a truncated or foreign file fails in many ways
            raise BrokenModel(
                f"model '{name}' can't be loaded: {type(error).__name__}: {error}"
            ) from None
        if not isinstance(bundle, dict) or not bundle.keys() >= BUNDLE_KEYS:
            raise BrokenModel(f"model '{name}' can't be loaded: not a model file of this service")
        return bundle

    def names(self) -> list[str]:
        """Every model name that exists (its pointers file does), readable or not, sorted."""
        return sorted(
            path.parent.name
            for path in self.root.glob(f"*/{POINTERS}")
            if NAME_PATTERN.fullmatch(path.parent.name)
        )

    # -- deleting ----------------------------------------------------------------------------
    def discard(self, name: str, version: int) -> None:
        """Remove whatever a stopped or crashed training of this version left: temporary
        files, and the version itself if its write had got that far. Only for a version the
        caller holds (in training), so nothing anyone else made is touched."""
        directory = self.name_dir(name)
        self.metadata_path(name, version).unlink(missing_ok=True)
        self.model_path(name, version).unlink(missing_ok=True)
        for suffix in (MODEL_SUFFIX, METADATA_SUFFIX):
            for temporary in directory.glob(f".{version}{suffix}.*"):
                if is_temporary(temporary):
                    temporary.unlink(missing_ok=True)
        if not self.exists(name):  # a first version that never got its pointers
            with contextlib.suppress(OSError):
                directory.rmdir()  # only if empty

    def delete(self, name: str) -> None:
        """The whole name: its folder is renamed away first (from that instant the name no
        longer exists), then deleted."""
        if not self.exists(name):
            raise ModelNotFound(name)
        doomed = self.root / f".{name}.{uuid.uuid4().hex}{REMOVING_SUFFIX}"
        self.name_dir(name).rename(doomed)
        shutil.rmtree(doomed, ignore_errors=True)

    def delete_version(self, name: str, version: int) -> None:
        """Metadata first: from that instant the version no longer exists."""
        try:
            self.metadata_path(name, version).unlink()
        except FileNotFoundError:
            raise ModelNotFound(name, version) from None
        self.model_path(name, version).unlink(missing_ok=True)


def _version_of(path: Path, suffix: str) -> int | None:
    stem = path.name[: -len(suffix)] if path.name.endswith(suffix) else ""
    return int(stem) if stem.isdigit() and not stem.startswith("0") else None
