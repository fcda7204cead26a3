"""Secrets at rest: values sealed with a key-encryption key (KEK) before they reach the store.

What is sealed: enrolment attestation keys and allocation-webhook secrets, i.e. the values
that let their holder register devices or impersonate edgemeta to a webhook. A copy of the
database (a backup, a stolen disk image of a PostgreSQL server) then holds only ciphertext.

Format of a sealed value: ``sealed:v1:<kid>:<base64url(nonce || ciphertext+tag)>``, AES-256-GCM
with a fresh 96-bit nonce per value. The associated data is the value's place (for example
``enrollment/<id>/primaryKey``), so a sealed value copied into another row or field does not
open. ``kid`` is the first 8 hex digits of SHA-256 of the key: it names which key sealed the
value, so several keys can be known at once during a rotation.

The keyring comes from, in order: ``EDGEMETA_KEK`` (comma-separated base64 keys), else
``EDGEMETA_KEK_FILE`` (one base64 key per line, ``#`` comments), else ``<data dir>/kek``, made on
first start with mode 0600. The first key seals; every key opens. Rotation: put a new key
first, run ``edgemeta kek reseal``, then drop the old key.

A stored value without the ``sealed:`` prefix is read as plaintext (data written before sealing
existed); ``edgemeta kek reseal`` seals it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from edgemeta.domain.errors import ServerError

log = logging.getLogger("edgemeta.security")

PREFIX = "sealed:v1:"
_NONCE = 12
KEY_BYTES = 32


class SealError(ServerError):
    """A sealed value cannot be opened (no such key, wrong key, or tampered ciphertext)."""


class KeyringError(ValueError):
    """The configured key-encryption keys are unusable."""


def key_id(key: bytes) -> str:
    """The short public name of ``key``."""
    return hashlib.sha256(key).hexdigest()[:8]


def generate_key() -> str:
    """A new random KEK, base64 (one line of a KEK file)."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def is_sealed(value: str) -> bool:
    """Whether ``value`` is a sealed value (as opposed to legacy plaintext)."""
    return value.startswith(PREFIX)


@dataclass(frozen=True, slots=True)
class Keyring:
    """Key-encryption keys: the first seals, all of them open."""

    keys: tuple[tuple[str, bytes], ...]

    @classmethod
    def of(cls, *encoded: str) -> Keyring:
        """A keyring from base64 keys, current first."""
        keys: list[tuple[str, bytes]] = []
        for i, text in enumerate(encoded, 1):
            try:
                raw = base64.b64decode(text.strip(), validate=True)
            except (binascii.Error, ValueError):
                raise KeyringError(f"KEK {i} is not base64") from None
            if len(raw) != KEY_BYTES:
                raise KeyringError(f"KEK {i} must be {KEY_BYTES} bytes (has {len(raw)})")
            keys.append((key_id(raw), raw))
        if not keys:
            raise KeyringError("no key-encryption key given")
        return cls(tuple(keys))

    @property
    def current(self) -> str:
        """The id of the key that seals."""
        return self.keys[0][0]

    def seal(self, plaintext: str, place: str) -> str:
        """Encrypt ``plaintext`` for ``place`` (empty stays empty: nothing to hide)."""
        if not plaintext:
            return plaintext
        kid, key = self.keys[0]
        nonce = secrets.token_bytes(_NONCE)
        sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), place.encode())
        return f"{PREFIX}{kid}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, stored: str, place: str) -> str:
        """Decrypt a value sealed for ``place``; plaintext (unsealed) values come back as-is."""
        if not is_sealed(stored):
            return stored
        kid, _, body = stored[len(PREFIX) :].partition(":")
        key = next((k for i, k in self.keys if i == kid), None)
        if key is None:
            raise SealError(
                f"{place} was sealed with key {kid}, which is not in the keyring "
                f"(known: {', '.join(i for i, _ in self.keys)}); add that key to EDGEMETA_KEK_FILE"
            )
        try:
            raw = base64.urlsafe_b64decode(body)
            return AESGCM(key).decrypt(raw[:_NONCE], raw[_NONCE:], place.encode()).decode()
        except (InvalidTag, binascii.Error, ValueError, UnicodeDecodeError):
            raise SealError(f"{place} does not open with key {kid}: tampered or moved") from None


def _read_file(path: Path) -> list[str]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise KeyringError(f"cannot read the KEK file {path}: {exc.strerror}") from None
    lines = [line.strip() for line in text.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _create_default(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # The key is written to a private temporary file first and then linked into place: the
    # link either creates the file whole or fails because it exists. Creating the file itself
    # with O_EXCL made it visible empty, and a second process starting at the same moment
    # (``--workers``, parallel tests) read no key from it and refused to start.
    fd, tmp = tempfile.mkstemp(prefix=".kek-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:  # mkstemp's file is 0600
            f.write("# edgemeta key-encryption key (docs/security.md); keep it out of backups\n")
            f.write(generate_key() + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return  # another process made it first: its key is the one
    finally:
        os.unlink(tmp)
    log.info(
        "made a new key-encryption key in %s: enrolment keys are sealed with it. Keep this file"
        " apart from database backups, or set EDGEMETA_KEK_FILE to a key kept elsewhere.",
        path,
    )


def load_keyring(*, env_keys: str, key_file: Path | None, data_dir: Path) -> Keyring:
    """The keyring from the settings (see the module docstring for the order)."""
    if env_keys.strip():
        return Keyring.of(*[k for k in env_keys.split(",") if k.strip()])
    if key_file is not None:
        return Keyring.of(*_read_file(key_file))
    default = data_dir / "kek"
    if not default.exists():
        _create_default(default)
    return Keyring.of(*_read_file(default))
