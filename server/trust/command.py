"""`python -m server.trust`: see which model files the server trusts, sign the ones an
operator vouches for, and rotate the signing key without losing a model.

    python -m server.trust list                  every version: trusted, untrusted (why), broken
    python -m server.trust sign churn/1 iris     sign these versions (a name alone: all of it)
    python -m server.trust sign --all            sign every untrusted version
    python -m server.trust rotate                a new key; every trusted version re-signed

It reads the same settings as the server (MODELS_PATH, MODEL_SIGNING_KEY, ..._FILE, .env),
and never makes a key: a mistyped key path is an error, not a new key. Signing says "these
bytes are mine": sign only files whose origin you know (models saved by v2, a backup you
made), and only regular files, never through a link, as the server reads them. Stop the
server before `rotate`, or restart it after: a running server keeps the key it started with.
An interrupted `rotate` leaves the new key in KEYFILE.new and the versions signed with one
key or the other: run it again, and it finishes the same rotation.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from server.config import Settings, load_settings
from server.errors import ServiceError
from server.monitoring import setting as capture_settings
from server.replication import manifest
from server.store.files import ModelStore
from server.store.keys import (
    UnusableKey,
    from_secret,
    read_key_file,
    signing_key,
    write_key_file,
)
from server.store.layout import read_regular
from server.store.recovery import migrate_flat_models
from server.store.signing import SIGNATURE, SigningKey, sign, signed_file_names


def versions(store: ModelStore) -> Iterator[tuple[str, int]]:
    for name in store.names():
        for version in store.versions(name):
            yield name, version


def resign(store: ModelStore, key: SigningKey, name: str, version: int, files: list[Path]) -> None:
    """Sign the version's metadata and `files` as they are now, with `key`: regular files
    only, never through a link (OSError otherwise, without blocking on a FIFO)."""
    metadata = store.signed_metadata(name, version)
    metadata.pop(SIGNATURE, None)
    signed = sign(key, name, metadata, {path.name: read_regular(path) for path in files})
    store.write_metadata(name, version, signed)


def vouch(store: ModelStore, name: str, version: int) -> str:
    """Sign one version's files as they are on disk; says what was done."""
    if store.describe(name, version).get("status") != "untrusted":
        return "trusted already (or broken: see list)"
    files = [store.model_path(name, version), store.onnx_path(name, version)]
    resign(store, store.key, name, version, [path for path in files if os.path.lexists(path)])
    return "signed"


def resign_serving_set(root: Path, old: SigningKey, new: SigningKey) -> None:
    """The serving set the replicas follow, signed with the new key (the same generation:
    the same set). One that verifies with neither is left for the primary's next write."""
    with contextlib.suppress(manifest.UnreadableSet):
        manifest.read(root, new)
        return  # none, or signed with the new key already (an earlier, interrupted rotate)
    try:
        served = manifest.read(root, old)
    except manifest.UnreadableSet:
        print(
            f"{manifest.FILE_NAME}: verifies with neither key; the primary's next change "
            "rewrites it"
        )
        return
    if served is not None:
        manifest.write(root, new, served.models, served.generation)
        print(f"{manifest.FILE_NAME}: re-signed")


def targets(store: ModelStore, given: list[str], every: bool) -> list[tuple[str, int]]:
    if every:
        return list(versions(store))
    chosen = []
    for target in given:
        name, _, version = target.partition("/")
        if not store.exists(name):
            raise SystemExit(f"no model named {name!r} in {store.root}")
        if version and not version.isdigit():
            raise SystemExit(f"{target!r}: give NAME or NAME/VERSION")
        chosen += [(name, int(version))] if version else [(name, v) for v in store.versions(name)]
    return chosen


def rotate(store: ModelStore, settings: Settings, old_key: SigningKey | None) -> int:
    """Re-sign every version that verifies with the old key or the new one; returns how
    many verify with neither (left as they are)."""
    if old_key is not None:  # the new key is the configured one
        old, new, finish = old_key, store.key, None
    elif settings.model_signing_key is not None:
        raise SystemExit(
            "MODEL_SIGNING_KEY is set: put the new secret there and give the old key with "
            "--old-key-file or --old-key-env"
        )
    else:  # a new key beside the configured file, moved over it at the end
        key_file = settings.model_signing_key_file.resolve()
        pending = key_file.with_name(key_file.name + ".new")
        if not pending.exists():  # else: an earlier rotate was interrupted; finish it
            write_key_file(pending, SigningKey.generate())
        old, new, finish = store.key, read_key_file(pending), (pending, key_file)
        print(
            f"the new key waits in {pending} until every version is re-signed; if this stops "
            "half-way, run `trust rotate` again: it finishes the same rotation"
        )
    with_old, with_new = ModelStore(store.root, old), ModelStore(store.root, new)
    refused = 0
    for name, version in versions(store):
        if with_new.describe(name, version).get("status") != "untrusted":
            continue  # re-signed by an earlier, interrupted rotate
        if with_old.describe(name, version).get("status") == "untrusted":
            print(f"{name}/{version}: verifies with neither key; left as it is")
            refused += 1
            continue
        metadata = with_old.read_metadata(name, version)
        files = [store.name_dir(name) / file for file in signed_file_names(metadata)]
        try:
            resign(store, new, name, version, files)
        except OSError as error:
            print(f"{name}/{version}: can't be re-signed: {error}")
            refused += 1
            continue
        print(f"{name}/{version}: re-signed")
    resign_serving_set(store.root, old, new)
    directories = {name: store.name_dir(name) for name in store.names()}
    for line in capture_settings.resign(store.root, directories, old, new):
        print(line)
    if finish is not None:
        os.replace(*finish)
    print(f"every trusted version is signed with key {new.key_id} now; restart the server")
    return refused


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server.trust", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="every version and whether the server trusts it")
    signing = commands.add_parser("sign", help="sign versions you vouch for")
    signing.add_argument("targets", nargs="*", metavar="NAME[/VERSION]")
    signing.add_argument("--all", action="store_true", help="every untrusted version")
    rotating = commands.add_parser("rotate", help="re-sign everything with a new key")
    rotating.add_argument("--old-key-file", type=Path, help="the old key's file")
    rotating.add_argument("--old-key-env", help="the variable that holds the old secret")
    args = parser.parse_args(argv)

    settings = load_settings()
    try:
        key, source = signing_key(
            settings.signing_secret,
            settings.model_signing_key_file,
            settings.models_path,
            create=False,
        )
    except UnusableKey as error:
        raise SystemExit(str(error)) from None
    store = ModelStore(settings.models_path, key)
    store.root.mkdir(parents=True, exist_ok=True)
    migrate_flat_models(store)  # a v2 directory: its models become version 1 of their name
    print(f"{store.root}: key {key.key_id}, {source}")
    if args.command == "list":
        for name, version in versions(store):
            info = store.describe(name, version)
            status = info.get("status")
            print(f"{name}/{version}: {status if status in ('untrusted', 'broken') else 'trusted'}")
            if "error" in info:
                print(f"    {info['error']}")
        return 0
    if args.command == "sign":
        if not args.targets and not args.all:
            parser.error("sign: give NAME[/VERSION]... or --all")
        for name, version in targets(store, args.targets, args.all):
            try:
                print(f"{name}/{version}: {vouch(store, name, version)}")
            except (ServiceError, OSError) as error:
                print(f"{name}/{version}: can't be signed: {error}")
        return 0
    try:
        old_key = (
            read_key_file(args.old_key_file)
            if args.old_key_file
            else from_secret(os.environ[args.old_key_env])
            if args.old_key_env
            else None
        )
    except (UnusableKey, KeyError) as error:
        raise SystemExit(f"the old key can't be used: {error}") from None
    return 1 if rotate(store, settings, old_key) else 0


if __name__ == "__main__":
    sys.exit(main())
