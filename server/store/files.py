"""ModelStore: the files under MODELS_PATH, a folder per model name.

    MODELS_PATH/
      churn/
        pointers.json   the current version, the aliases and their history (server.store.pointers)
        1.joblib        version 1: the estimator, its classes and the rows its check uses
        1.onnx          version 1: its compiled copy, when it has one
        1.json          version 1: its metadata with the files' tags, written last
        2.joblib, 2.json
        monitoring.json its capture setting (server.monitoring.setting)
      _numbers.json     the highest number each removed name had (server.store.numbers)

Every file is written atomically (server.store.atomic). A version exists exactly when its
metadata file does, a name exactly when its pointers file does, and the pointers only name
versions that exist; `server.store.recovery.prepare` removes what interrupted writes left.
Every file of a version is signed (server.store.signing), read only through a check of its
tag (server.store.checks), and only if it is a regular file (no link, no FIFO).
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import joblib

from server.errors import BrokenModel, ModelNotFound, ServiceError, UntrustedModel
from server.store import numbers
from server.store.atomic import is_temporary, write_bytes_atomically
from server.store.bundle import BUNDLE_KEYS, public, serialize
from server.store.checks import FileChecks
from server.store.layout import (
    METADATA_SUFFIX,
    MODEL_SUFFIX,
    ONNX_SUFFIX,
    POINTERS,
    REMOVING_SUFFIX,
    VERSION_FILE_SUFFIXES,
    check_name,
    entries,
    entry_problem,
    read_regular,
    version_of,
)
from server.store.pointers import Pointers, first
from server.store.signing import (
    SigningKey,
    metadata_problem,
    sign,
    signed_file_names,
    untrusted_detail,
)


class ModelStore:
    """Picklable (a training process gets one to save with): the root and the key."""

    def __init__(self, root: Path, key: SigningKey) -> None:
        self.root = root.resolve()
        self.key = key
        self.checks = FileChecks(key)
        # Path -> (its inode, size and times; its metadata; why it is not trusted, or None)
        self._metadata: dict[Path, tuple[tuple[int, ...], dict[str, Any], str | None]] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"root": self.root, "key": self.key}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["root"], state["key"])  # type: ignore[misc]

    # -- paths ---------------------------------------------------------------------------
    def name_dir(self, name: str) -> Path:
        path = self.root / check_name(name)  # the pattern allows no separator and no '..'
        if path.is_symlink():  # it could lead anywhere: never followed
            raise BrokenModel(f"model '{name}' can't be used: {entry_problem(path)}")
        return path

    def model_path(self, name: str, version: int) -> Path:
        return self.name_dir(name) / f"{version}{MODEL_SUFFIX}"

    def onnx_path(self, name: str, version: int) -> Path:
        return self.name_dir(name) / f"{version}{ONNX_SUFFIX}"

    def metadata_path(self, name: str, version: int) -> Path:
        return self.name_dir(name) / f"{version}{METADATA_SUFFIX}"

    def pointers_path(self, name: str) -> Path:
        return self.name_dir(name) / POINTERS

    # -- writing (called in the training process) ------------------------------------------
    def save(
        self, name: str, version: int, bundle: dict[str, Any], metadata: dict[str, Any]
    ) -> dict[str, Any]:
        """Write the version's files, signed, then its metadata with their tags; the first
        version of a name becomes its current one. Returns the metadata as answers show it.
        A compiled copy in the bundle (`onnx`) goes to a file of its own."""
        return self.save_serialized(name, version, *serialize(bundle), metadata)

    def save_serialized(
        self, name: str, version: int, model: bytes, onnx: bytes | None, metadata: dict[str, Any]
    ) -> dict[str, Any]:
        """The same, for a model serialized elsewhere (by `serialize`, on a cluster worker)."""
        files = {self.model_path(name, version): model}
        if onnx is not None:
            files[self.onnx_path(name, version)] = onnx
        metadata_path = self.metadata_path(name, version)
        try:
            metadata_path.parent.mkdir(exist_ok=True)
            for path, data in files.items():
                write_bytes_atomically(path, data)
            metadata = {**metadata, "version": version, "size_bytes": len(model)}
            signed = sign(self.key, name, metadata, {path.name: d for path, d in files.items()})
            self.write_metadata(name, version, signed)
            if not self.exists(name):
                self.write_pointers(name, first(version))
        except BaseException:
            for path in (metadata_path, *files):
                path.unlink(missing_ok=True)
            if not self.exists(name):  # the name's first version: no folder left either
                with contextlib.suppress(OSError):
                    metadata_path.parent.rmdir()
            raise
        return public(metadata)

    def write_metadata(self, name: str, version: int, metadata: dict[str, Any]) -> None:
        write_bytes_atomically(self.metadata_path(name, version), json.dumps(metadata).encode())

    def write_pointers(self, name: str, pointers: Pointers) -> None:
        write_bytes_atomically(self.pointers_path(name), json.dumps(pointers.to_json()).encode())

    # -- reading -----------------------------------------------------------------------------
    def exists(self, name: str) -> bool:
        return self.pointers_path(name).is_file()

    def read_pointers(self, name: str) -> Pointers:
        try:
            return Pointers.from_json(json.loads(read_regular(self.pointers_path(name))))
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
        found = (version_of(path, METADATA_SUFFIX) for path in files)
        return sorted(version for version in found if version is not None)

    def next_version(self, name: str, pointers: Pointers | None) -> int:
        """One above every version that exists, ever had a pointer or was deleted, also
        before a removal of the name (server.store.numbers): numbers are not reused."""
        seen = set(self.versions(name)) | {numbers.given(self.root, name)}
        if pointers is not None:
            seen.add(pointers.highest_deleted)
            for move in pointers.history:
                seen.update(v for v in (move.before, move.after) if v is not None)
        return max(seen, default=0) + 1

    def signed_metadata(self, name: str, version: int) -> dict[str, Any]:
        """The metadata file as it is, tags included, not yet checked."""
        path = self.metadata_path(name, version)
        try:
            metadata = json.loads(read_regular(path))
        except FileNotFoundError:
            raise ModelNotFound(name, version) from None
        except (OSError, ValueError) as error:
            raise BrokenModel(f"model '{name}' has unreadable metadata: {error}") from None
        if isinstance(metadata, dict):
            return metadata
        raise BrokenModel(f"model '{name}' has unreadable metadata: not an object")

    def read_metadata(self, name: str, version: int) -> dict[str, Any]:
        """The checked metadata (raises UntrustedModel), tags included. Read and checked
        again only when the file changes (a listing reads every version's)."""
        path = self.metadata_path(name, version)
        try:
            status = path.lstat()
        except FileNotFoundError:
            raise ModelNotFound(name, version) from None
        stamp = (status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)
        known = self._metadata.get(path)
        if known is None or known[0] != stamp:
            metadata = self.signed_metadata(name, version)
            known = (stamp, metadata, metadata_problem(self.key, name, metadata))
            self._metadata[path] = known
        _, metadata, problem = known
        if problem is not None:
            raise UntrustedModel(untrusted_detail(name, version, problem))
        return {**metadata, "name": name, "version": version}

    def describe(self, name: str, version: int) -> dict[str, Any]:
        """The version's metadata as answers show it; a version whose files are not the
        server's is `{"name", "version", "status": "untrusted", "error"}`, one whose files
        can't be read is the same with "broken"."""
        try:
            metadata = self.read_metadata(name, version)
            problem = self.trust_problem(name, version, metadata)
        except ModelNotFound:  # a pointer names a version whose metadata file is missing
            problem = f"model '{name}' has no metadata file for version {version}"
            return {"name": name, "version": version, "status": "broken", "error": problem}
        except BrokenModel as error:
            return {"name": name, "version": version, "status": "broken", "error": error.detail}
        except UntrustedModel as error:
            problem = error.detail
        else:
            if problem is None:
                return public(metadata)
            problem = untrusted_detail(name, version, problem)
        return {"name": name, "version": version, "status": "untrusted", "error": problem}

    def trust_problem(self, name: str, version: int, metadata: dict[str, Any]) -> str | None:
        """Why the files on disk of this checked metadata are not trusted, or None."""
        model = self.model_path(name, version)
        paths = [self.name_dir(name) / file for file in signed_file_names(metadata)]
        if model not in paths:
            return f"{model.name} is not one of the files the server signed"
        return self.checks.on_disk(name, metadata, paths)

    def load(self, name: str, version: int, compiled: bool = True) -> dict[str, Any]:
        """The saved bundle: estimator, classes (original labels), model_type, n_features,
        and the compiled copy (`onnx`) if it has one. Nothing is unpickled before its tag is
        checked."""
        metadata = self.read_metadata(name, version)
        data = self.checks.read(name, version, metadata, self.model_path(name, version))
        try:
            bundle = joblib.load(io.BytesIO(data))
        except Exception as error:  # a file we signed but can't read (another library version)
            raise BrokenModel(
                f"model '{name}' can't be loaded: {type(error).__name__}: {error}"
            ) from None
        if not isinstance(bundle, dict) or not bundle.keys() >= BUNDLE_KEYS:
            raise BrokenModel(f"model '{name}' can't be loaded: not a model file of this service")
        if compiled and bundle.get("onnx") is None:  # from v3 it has a file of its own
            onnx = self.read_onnx(name, version, metadata)
            if onnx is not None:
                bundle["onnx"] = onnx
        return bundle

    def read_onnx(self, name: str, version: int, metadata: dict[str, Any]) -> bytes | None:
        """The compiled copy's checked bytes, or None if the version was saved without one."""
        path = self.onnx_path(name, version)
        if path.name not in signed_file_names(metadata):
            return None
        return self.checks.read(name, version, metadata, path)

    def names(self) -> list[str]:
        """Every model name that exists (its pointers file does), readable or not, sorted;
        not the entries of `unusable`."""
        return sorted(name for name, problem in entries(self.root).items() if problem is None)

    def unusable(self) -> dict[str, str]:
        """Entries that look like a model's folder but can't be one (a link, a pointers file
        that is not a regular file): name -> why. Listed, never opened."""
        return {name: problem for name, problem in entries(self.root).items() if problem}

    def discard(self, name: str, version: int) -> None:
        """Remove what a stopped or crashed training of this version left (temporary files,
        the version if written): only for a version the caller holds (in training)."""
        directory = self.name_dir(name)
        for suffix in VERSION_FILE_SUFFIXES:
            (directory / f"{version}{suffix}").unlink(missing_ok=True)
            for temporary in directory.glob(f".{version}{suffix}.*"):
                if is_temporary(temporary):
                    temporary.unlink(missing_ok=True)
        if not self.exists(name):  # a first version that never got its pointers
            with contextlib.suppress(OSError):
                directory.rmdir()  # only if empty

    def keep_numbers(self, name: str) -> None:
        """Before a removal, its numbers kept aside (never given again): the one write a
        removal needs, made first (a full disk leaves the name as it was)."""
        if not self.exists(name):
            raise ModelNotFound(name)
        pointers = None
        with contextlib.suppress(ServiceError):  # unreadable: its versions' numbers still count
            pointers = self.read_pointers(name)
        numbers.remember(self.root, name, self.next_version(name, pointers) - 1)

    def delete(self, name: str) -> None:
        """The whole name (numbers kept): its folder renamed away, then deleted."""
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
        self.onnx_path(name, version).unlink(missing_ok=True)
