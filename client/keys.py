"""The key file a user holds, and the nonces signed with it.

A key file is the JSON `xinf apikey create --json` prints (the operator's
DATA_DIR/operator.json has the same shape):

    Ed25519  {"api_key", "secret_pem", "secret_hex", "user_id", "kind": "ed25519"}
    HMAC     {"api_key", "secret", "user_id", "kind": "hmac"}

`kind` may be missing: a file with secret_pem or secret_hex is Ed25519, one
with secret is HMAC. An Ed25519 file with both secret forms must have them
agree. The HMAC key is the UTF-8 bytes of the secret string, as CCXT and the
Binance clients use it.

Nonces. The server accepts a request only if its ts_nonce (ms) is within 30 s
of its clock and strictly greater than the last nonce it accepted for the key.
`next_nonce` hands out max(now_ms, last + 1) per api key, process-wide and
under a lock, so two clients on one key in one process never collide and a
caller faster than one request per ms still gets increasing nonces (running
ahead of the clock by at most the excess, which the 30 s window bounds).
"""
from __future__ import annotations

import pathlib
import threading
import time
from typing import NamedTuple

import msgspec

from ..accounts import signing


class KeyFileError(ValueError):
    """A key file that is missing, unreadable or not the shape xinf apikey create prints."""


class KeyFile(NamedTuple):
    api_key: str
    kind: str               # signing.ED25519 | signing.HMAC
    secret: bytes           # the 32-byte Ed25519 seed, or the HMAC key bytes
    user_id: int | None

    @classmethod
    def load(cls, path) -> KeyFile:
        path = pathlib.Path(path)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise KeyFileError(f"key file {path}: not found") from None
        except OSError as e:
            raise KeyFileError(f"key file {path}: {e.strerror}") from None
        try:
            doc = msgspec.json.decode(raw)
        except msgspec.DecodeError as e:
            raise KeyFileError(f"key file {path}: not JSON ({e})") from None
        try:
            return cls.from_json(doc)
        except KeyFileError as e:
            raise KeyFileError(f"key file {path}: {e}") from None

    @classmethod
    def from_json(cls, doc: dict) -> KeyFile:
        if not isinstance(doc, dict):
            raise KeyFileError("expected a JSON object")
        api_key = doc.get("api_key")
        if not isinstance(api_key, str) or not signing.API_KEY_RE.match(api_key):
            raise KeyFileError(f"api_key {api_key!r} is not AK_ and 16 uppercase hex digits")
        kind = doc.get("kind")
        if kind is None:
            if "secret_pem" in doc or "secret_hex" in doc:
                kind = signing.ED25519
            elif "secret" in doc:
                kind = signing.HMAC
            else:
                raise KeyFileError("no secret (expected secret_pem/secret_hex or secret)")
        if kind == signing.ED25519:
            secret = _ed25519_seed(doc)
        elif kind == signing.HMAC:
            text = doc.get("secret")
            if not isinstance(text, str) or not text:
                raise KeyFileError("an hmac key needs a non-empty string secret")
            secret = text.encode()
        else:
            raise KeyFileError(f"kind {kind!r} is neither {signing.ED25519!r} nor {signing.HMAC!r}")
        user_id = doc.get("user_id")
        if user_id is not None and (not isinstance(user_id, int) or isinstance(user_id, bool)):
            raise KeyFileError(f"user_id {user_id!r} is not an integer")
        return cls(api_key, kind, secret, user_id)

    def __repr__(self) -> str:
        # The secret stays out of logs and tracebacks.
        return f"KeyFile(api_key={self.api_key!r}, kind={self.kind!r}, secret=<hidden>, user_id={self.user_id!r})"

    def authorization(self, ts_nonce: int, method: str, path_with_query: str, body: bytes = b"") -> str:
        """The Authorization header value of a request signed with this key."""
        return signing.sign_request(self.kind, self.api_key, self.secret, ts_nonce, method,
                                    path_with_query, body)


def _ed25519_seed(doc: dict) -> bytes:
    pem, hex_text = doc.get("secret_pem"), doc.get("secret_hex")
    seed_pem = seed_hex = None
    if pem is not None:
        try:
            seed_pem = signing.seed_of_pem(pem)
        except (ValueError, TypeError, AttributeError) as e:
            raise KeyFileError(f"secret_pem: {e}") from None
    if hex_text is not None:
        try:
            seed_hex = bytes.fromhex(hex_text)
        except (ValueError, TypeError):
            raise KeyFileError("secret_hex is not hex") from None
        if len(seed_hex) != 32:
            raise KeyFileError(f"secret_hex is {len(seed_hex)} bytes, an Ed25519 seed is 32")
    if seed_pem is None and seed_hex is None:
        raise KeyFileError("an ed25519 key needs secret_pem or secret_hex")
    if seed_pem is not None and seed_hex is not None and seed_pem != seed_hex:
        raise KeyFileError("secret_pem and secret_hex are different keys")
    return seed_pem if seed_pem is not None else seed_hex


_nonce_lock = threading.Lock()
_last_nonce: dict[str, int] = {}


def next_nonce(api_key: str) -> int:
    """max(now_ms, last + 1) for this key: strictly increasing within the process."""
    now_ms = time.time_ns() // 1_000_000
    with _nonce_lock:
        nonce = max(now_ms, _last_nonce.get(api_key, 0) + 1)
        _last_nonce[api_key] = nonce
    return nonce


def reserve_nonces(api_key: str, last: int) -> None:
    """Note that nonces up to `last` were handed out elsewhere (pre-signed requests)."""
    with _nonce_lock:
        _last_nonce[api_key] = max(last, _last_nonce.get(api_key, 0))
