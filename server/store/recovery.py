"""Start-up: models saved by v2 become version 1 of their name, and what interrupted writes
left is removed. Both are safe to interrupt and run again.

A v2 model is `NAME.joblib` and `NAME.json` side by side in MODELS_PATH. Its files are
hard-linked (copied where links are not possible) into `NAME/1.joblib` and `NAME/1.json`,
the pointers are written, and only then are the old names removed: a crash at any step
leaves the v2 files in place, and the next start-up finishes the move. A v2 file carries no
signature: it is listed as untrusted until an operator signs it (`python -m server.trust`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from pathlib import Path

from server.errors import StartupFailed
from server.store.atomic import is_temporary, sync_directory
from server.store.files import ModelStore
from server.store.layout import (
    METADATA_SUFFIX,
    MODEL_SUFFIX,
    NAME_PATTERN,
    ONNX_SUFFIX,
    POINTERS,
    REMOVING_SUFFIX,
    VERSION_FILE_SUFFIXES,
)
from server.store.pointers import first

logger = logging.getLogger("server.store")


def prepare(store: ModelStore) -> list[str]:
    """Create the directory, move v2 models into version 1 of their name, and delete what an
    interrupted write left; returns what was removed."""
    store.root.mkdir(parents=True, exist_ok=True)
    migrate_flat_models(store)
    return remove_leftovers(store)


def require_store(store: ModelStore) -> None:
    """A replica's start-up: it changes nothing, so the store must be there already."""
    if not store.root.is_dir():
        raise StartupFailed(
            f"MODELS_PATH ({store.root}) is not a directory: a replica serves the store its "
            "primary writes (the same volume, mounted here)"
        )


def migrate_flat_models(store: ModelStore) -> list[str]:
    """Move every v2 model into version 1 of its name; returns the names moved."""
    moved = []
    for metadata in sorted(store.root.glob(f"*{METADATA_SUFFIX}")):
        name = metadata.name[: -len(METADATA_SUFFIX)]
        model = store.root / f"{name}{MODEL_SUFFIX}"
        if not (metadata.is_file() and NAME_PATTERN.fullmatch(name)):
            continue
        if not model.is_file():
            continue  # metadata without its model: listed as broken by v2, left as it is
        if store.exists(name):  # moved already, and the old names not yet removed
            model.unlink()
            metadata.unlink()
            continue
        store.name_dir(name).mkdir(exist_ok=True)
        _link(model, store.model_path(name, 1))
        _link(metadata, store.metadata_path(name, 1))
        sync_directory(store.name_dir(name))
        store.write_pointers(name, first(1))
        model.unlink()
        metadata.unlink()
        sync_directory(store.root)
        moved.append(name)
        logger.info("moved model '%s' saved by v2 to %s (version 1)", name, store.name_dir(name))
    return moved


def _link(source: Path, target: Path) -> None:
    target.unlink(missing_ok=True)  # from a move that was interrupted
    try:
        os.link(source, target)
    except OSError:  # a file system without hard links
        shutil.copy2(source, target)


def remove_leftovers(store: ModelStore) -> list[str]:
    """Delete temporary files, folders being removed, versions whose metadata was never
    written, and names none of whose versions got its pointers; returns what was removed."""
    removed: list[Path] = []
    for path in store.root.iterdir():
        if is_temporary(path):
            path.unlink(missing_ok=True)
            removed.append(path)
        elif path.name.startswith(".") and path.name.endswith(REMOVING_SUFFIX):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    names = [p for p in store.root.iterdir() if p.is_dir() and NAME_PATTERN.fullmatch(p.name)]
    for directory in names:
        for path in list(directory.iterdir()):
            half_written = (
                path.suffix in (MODEL_SUFFIX, ONNX_SUFFIX)
                and not path.with_suffix(METADATA_SUFFIX).exists()
            )
            if is_temporary(path) or half_written:
                path.unlink(missing_ok=True)
                removed.append(path)
        if not (directory / POINTERS).exists():
            removed.extend(_without_pointers(directory))
    for path in removed:
        logger.warning("removed leftover of an interrupted write: %s", path.relative_to(store.root))
    return sorted(str(path.relative_to(store.root)) for path in removed)


def _without_pointers(directory: Path) -> list[Path]:
    """A folder whose first version was being written when the server stopped: that version
    was never answered 201. Its version files go, and the folder if nothing else is in it."""
    removed = [
        path
        for path in directory.iterdir()
        if path.suffix in VERSION_FILE_SUFFIXES and path.stem.isdigit()
    ]
    for path in removed:
        path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        directory.rmdir()
        removed.append(directory)
    return removed
