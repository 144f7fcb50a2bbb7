"""Where the signing key comes from: MODEL_SIGNING_KEY, or a key file created on first start.

The default key file sits beside the models, never among them: whoever can write to
MODELS_PATH (a shared volume, a restored backup) must not also be able to read the key, or
they could sign what they plant. Created with mode 0600 in a 0700 folder, it survives
restarts as the models do; in compose it has a volume of its own.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from pathlib import Path

from server.errors import StartupFailed
from server.store.signing import SigningKey

MIN_SECRET_CHARS = 32


class UnusableKey(StartupFailed):
    """A key that can't be used: the message says what to fix (start-up stops on it)."""


def from_secret(secret: str) -> SigningKey:
    if len(secret) < MIN_SECRET_CHARS:
        raise UnusableKey(
            f"MODEL_SIGNING_KEY must be at least {MIN_SECRET_CHARS} characters "
            "(e.g. the output of: python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    return SigningKey(secret.encode())


def read_key_file(path: Path) -> SigningKey:
    try:
        text = path.read_text().strip()
    except OSError as error:
        raise UnusableKey(f"the signing key file {path} can't be read: {error}") from None
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        raise UnusableKey(f"the signing key file {path} does not hold a hex key") from None
    if len(secret) < MIN_SECRET_CHARS // 2:
        raise UnusableKey(f"the signing key file {path} holds a key of under 16 bytes")
    return SigningKey(secret)


def write_key_file(path: Path, key: SigningKey) -> None:
    """Create the key file (never overwrite one): mode 0600, in a folder of mode 0700. It
    is written whole under another name, then linked into place: a full disk never leaves
    an empty key file behind (FileExistsError if one exists)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(key.secret.hex() + "\n")
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)
        except OSError as error:  # a filesystem without hard links: renamed if still free
            if error.errno not in (errno.EPERM, errno.EOPNOTSUPP) or path.exists():
                raise
            os.rename(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def check_settings(secret: str | None, key_file: Path, models_path: Path) -> None:
    """Refuse settings that can't give a usable key, without touching any file (the app is
    built, and importing server.main checks this, before anything is created)."""
    if secret is not None:
        from_secret(secret)
    elif key_file.resolve().is_relative_to(models_path.resolve()):
        raise UnusableKey(
            f"MODEL_SIGNING_KEY_FILE ({key_file.resolve()}) is inside MODELS_PATH: whoever can "
            "write the models could then read the key. Put it elsewhere"
        )


def signing_key(
    secret: str | None, key_file: Path, models_path: Path, create: bool = True
) -> tuple[SigningKey, str]:
    """The key, and where it came from (for the start-up log: never the key itself).
    `create=False` (a replica, the trust command): a missing key file is an error, never
    made anew."""
    if secret is not None:
        return from_secret(secret), "from MODEL_SIGNING_KEY"
    check_settings(None, key_file, models_path)
    key_file = key_file.resolve()
    if not key_file.exists() and not create:
        raise UnusableKey(
            f"the signing key file {key_file} does not exist (a mistyped path?): a replica and "
            "the trust command use the key the server made, never a new one "
            "(MODEL_SIGNING_KEY, or the server's MODEL_SIGNING_KEY_FILE)"
        )
    if create and key_file.is_file() and key_file.stat().st_size == 0:
        # Left by a release that could fail half-way on a full disk: no key was ever in it,
        # so nothing was signed with it.
        key_file.unlink()
    if not key_file.exists():
        try:
            write_key_file(key_file, SigningKey.generate())
        except FileExistsError:
            pass  # another process made it first: use theirs
        except OSError as error:
            message = f"the signing key file {key_file} can't be created: {error}"
            raise UnusableKey(message) from None
        else:
            return read_key_file(key_file), f"created in {key_file} (keep it: see Security)"
    described = f"from {key_file}"
    if key_file.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        described += " (warning: readable by others than its owner; chmod 600 it)"
    return read_key_file(key_file), described
