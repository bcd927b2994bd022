"""Provider-opaque reasoning state, carried in a reasoning item's `encrypted_content`:
encrypted and authenticated, so a client can carry it but neither read nor forge it.

Each provider seals what it must get back on the next turn (Anthropic thinking blocks and their
signatures, Gemini thought signatures, an OpenAI upstream's own encrypted reasoning). A sealed
value is `rj2.<provider>.<key id>.<base64url(nonce + AES-256-GCM ciphertext)>`; the provider
and key id are authenticated as associated data, so a blob altered, cut short or re-tagged
for another provider fails to open. The engine opens every blob a client sends before any
provider runs (`check`); a provider then takes only blobs sealed for itself, so state that
belongs to another provider in a mixed chain is left out rather than sent where it would be
rejected.

Keys come from the configuration (`secret_keys`: the first seals, any opens, for rotation)
or from a secret the first instance generates and keeps in the database. `cryptography` is
imported by the first seal or open, so a gateway that never meets reasoning state does not
hold it (some 10 MB of memory).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = "rj2"
_NONCE = 12


class SealError(ValueError):
    """A value that is not state this gateway sealed with a key it still holds."""


class Keyring:
    def __init__(self, secrets: list[str]) -> None:
        if not secrets:
            raise ValueError("a keyring needs at least one secret")
        self.keys: dict[str, bytes] = {}  # key id → the AES-256 key
        for secret in secrets:
            digest = hashlib.sha256(b"rejoinder encrypted_content v2\0" + secret.encode()).digest()
            self.keys.setdefault(hashlib.sha256(digest).hexdigest()[:8], digest)
        self.current = next(iter(self.keys))
        self.ciphers: dict[str, AESGCM] = {}  # made on first use

    def _cipher(self, key_id: str) -> AESGCM:
        cipher = self.ciphers.get(key_id)
        if cipher is None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            cipher = self.ciphers[key_id] = AESGCM(self.keys[key_id])
        return cipher

    def seal(self, provider: str, payload: Any) -> str:
        header = f"{_VERSION}.{provider}.{self.current}"
        nonce = os.urandom(_NONCE)
        sealed = self._cipher(self.current).encrypt(nonce, orjson.dumps(payload), header.encode())
        return f"{header}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, value: str) -> tuple[str, Any]:
        """`(provider, payload)` of a sealed value; `SealError` for anything else."""
        try:
            version, provider, key_id, body = value.split(".")
            raw = base64.urlsafe_b64decode(body.encode())
        except (ValueError, binascii.Error):
            raise SealError("not a value this gateway sealed") from None
        if version != _VERSION:
            raise SealError("not a value this gateway sealed")
        if key_id not in self.keys:
            raise SealError("sealed with a key this gateway no longer holds")
        from cryptography.exceptions import InvalidTag

        try:
            plain = self._cipher(key_id).decrypt(raw[:_NONCE], raw[_NONCE:], f"{version}.{provider}.{key_id}".encode())
        except (InvalidTag, ValueError):
            raise SealError("altered, cut short or forged") from None
        return provider, orjson.loads(plain)


_keyring: Keyring | None = None


def use(keyring: Keyring) -> None:
    """Install the process's keyring (at start, before any request)."""
    global _keyring
    _keyring = keyring


def _ring() -> Keyring:
    if _keyring is None:
        raise RuntimeError("no keyring: call providers.state.use() at start")
    return _keyring


def seal(provider: str, payload: Any) -> str:
    return _ring().seal(provider, payload)


def check(value: str) -> None:
    """Raise `SealError` unless `value` opens (whichever provider it belongs to)."""
    _ring().open(value)


def unseal(provider: str, value: str | None) -> Any | None:
    """The payload `provider` sealed into `value`; None when it is another provider's, or
    cannot be opened any more (a stored item whose key was retired)."""
    if not value:
        return None
    try:
        owner, payload = _ring().open(value)
    except SealError:
        return None
    return payload if owner == provider else None
