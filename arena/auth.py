"""Who is calling: principals named in an operator-managed key file (keys kept only as SHA-256
hashes), their roles, and the local operator of a server without a key file.

A key file is TOML, written by `maro arena keys add`:

    [principals.alice]
    role = "player"
    key_sha256 = "9f86d081..."

Clients send `authorization: Bearer <key>` as gRPC metadata. A key is 32 random bytes, so its
unsalted SHA-256 is as good as a salted slow hash here and lets a lookup be one dict access."""

from __future__ import annotations

import contextvars
import hashlib
import ipaddress
import logging
import os
import re
import secrets
import threading
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Role = Literal["admin", "player"]
ROLES: tuple[str, ...] = ("admin", "player")
KEY_PREFIX = "maro_"
NAME = re.compile(r"[a-z0-9][a-z0-9_.\-]{0,63}")
"""Principal names: lowercase, no ':' (rated identities of bots and models carry one)."""
RELOAD_EVERY_S = 2.0


class AuthError(Exception):
    """No valid key: the caller is not a principal of this server (UNAUTHENTICATED)."""


class KeyFileError(ValueError):
    """A key file that cannot be read or holds invalid entries; the message says which."""


@dataclass(frozen=True)
class Principal:
    """A caller the operator vouches for. `local` is the operator of a loopback-only server."""

    name: str
    role: Role
    local: bool = False

    @property
    def admin(self) -> bool:
        return self.role == "admin"


LOCAL = Principal("local", "admin", local=True)
"""Every caller of a server started without a key file (it listens on loopback only)."""

_current: contextvars.ContextVar[Principal] = contextvars.ContextVar("maro_principal", default=LOCAL)


def current_principal() -> Principal:
    """The principal of the call being served (set by the transport's guard)."""
    return _current.get()


def set_principal(principal: Principal) -> contextvars.Token:
    return _current.set(principal)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def is_loopback(host: str) -> bool:
    """Whether listening on `host` reaches this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bearer_key(metadata) -> str | None:
    """The key of an `authorization: Bearer <key>` metadata entry, or None."""
    for name, value in metadata or ():
        if name == "authorization":
            text = value.decode(errors="replace") if isinstance(value, bytes) else value
            scheme, _, key = text.strip().partition(" ")
            return key.strip() if scheme.lower() == "bearer" and key.strip() else None
    return None


def read_key_file(path: Path) -> dict[str, tuple[Role, str]]:
    """name -> (role, key hash), checked entry by entry."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} not found; create it with `maro arena keys add NAME --keys {path}`") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise KeyFileError(f"key file {path} is not readable TOML: {exc}") from None
    unknown = set(data) - {"principals"}
    if unknown:
        raise KeyFileError(f"key file {path}: unknown top-level keys {sorted(unknown)}; only [principals.NAME] tables")
    principals = data.get("principals", {})
    if not isinstance(principals, dict):
        raise KeyFileError(f"key file {path}: `principals` must be a table")
    entries: dict[str, tuple[Role, str]] = {}
    seen: dict[str, str] = {}
    for name, entry in principals.items():
        where = f"key file {path}, principal {name!r}"
        if not NAME.fullmatch(name):
            raise KeyFileError(f"{where}: names are 1-64 of a-z 0-9 _ . - (starting with a letter or digit)")
        if not isinstance(entry, dict) or set(entry) - {"role", "key_sha256"}:
            raise KeyFileError(f"{where}: needs exactly `role` and `key_sha256` (never a plain key)")
        role, digest = entry.get("role"), entry.get("key_sha256")
        if role not in ROLES:
            raise KeyFileError(f"{where}: role must be one of {', '.join(ROLES)}, got {role!r}")
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise KeyFileError(f"{where}: key_sha256 must be 64 lowercase hex digits")
        if digest in seen:
            raise KeyFileError(f"{where}: the same key as {seen[digest]!r}")
        seen[digest] = name
        entries[name] = (role, digest)
    return entries


def write_key_file(path: Path, entries: dict[str, tuple[Role, str]]) -> None:
    """Rewrite the file atomically, readable by its owner only."""
    lines = ["# Principals of a MARO arena (`maro arena keys`). Keys are kept as SHA-256 hashes only.", ""]
    for name in sorted(entries):
        role, digest = entries[name]
        lines += [f"[principals.{name}]", f'role = "{role}"', f'key_sha256 = "{digest}"', ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines))
    os.replace(tmp, path)


def add_principal(path: Path, name: str, role: Role) -> str:
    """Add (or re-key) `name` with `role`; returns the new key, which is stored nowhere."""
    if not NAME.fullmatch(name):
        raise KeyFileError(f"principal names are 1-64 of a-z 0-9 _ . - (starting with a letter or digit), not {name!r}")
    if role not in ROLES:
        raise KeyFileError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    entries = read_key_file(path) if path.exists() else {}
    key = new_key()
    entries[name] = (role, hash_key(key))
    write_key_file(path, entries)
    return key


def remove_principal(path: Path, name: str) -> bool:
    entries = read_key_file(path)
    if entries.pop(name, None) is None:
        return False
    write_key_file(path, entries)
    return True


class KeyRing:
    """The principals of a key file, re-read when the file changes (keys revoked or added without
    a restart); a file that turns unreadable keeps the last good set and says so once."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._checked = 0.0
        self._stamp: tuple[int, int] | None = None
        self._by_hash: dict[str, Principal] = {}
        self._load()  # a broken file stops the server's start with its reason

    def _load(self) -> None:
        stat = self.path.stat()
        entries = read_key_file(self.path)
        self._by_hash = {digest: Principal(name, role) for name, (role, digest) in entries.items()}
        self._stamp = (stat.st_mtime_ns, stat.st_size)

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < RELOAD_EVERY_S:
            return
        with self._lock:
            self._checked = now
            try:
                stat = self.path.stat()
                if (stat.st_mtime_ns, stat.st_size) != self._stamp:
                    self._load()
            except (OSError, KeyFileError) as exc:
                logging.getLogger(__name__).error("key file not reloaded, keeping the last good one: %s", exc)
                self._stamp = None

    def principal(self, key: str | None) -> Principal:
        if not key:
            raise AuthError("this arena needs a key: send the metadata `authorization: Bearer <key>`")
        self._refresh()
        found = self._by_hash.get(hash_key(key))
        if found is None:
            raise AuthError("the key is not valid for this arena")
        return found

    def __len__(self) -> int:
        return len(self._by_hash)
