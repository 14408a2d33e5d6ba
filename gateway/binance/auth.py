"""Binance's SIGNED requests (spec/API.md section 2): who is asking.

A signed request names its api key in the X-MBX-APIKEY header and carries,
among its parameters, `timestamp`, optionally `recvWindow`, and `signature`
over the query string concatenated with the body, both as sent and without
the signature parameter, no separator between them. An HMAC key's signature
is HMAC-SHA256 in hex, keyed with the secret's hex text, which is what the
client holds (accounts/signing.hmac_key); an Ed25519 key's is the signature
in base64 (percent-encoded in the request). `timestamp` is in ms, or in µs
when above 10**15; `recvWindow` is in ms with up to three decimals (µs),
5000 by default, at most 60000.

`Signatures.check` runs before the handler reads a parameter, so before any
command exists, and checks in this order, the first failure answering:

    -2014 [401]  no X-MBX-APIKEY header, or not AK_ and 16 uppercase hex digits
    -1102 [400]  no timestamp, or no signature
    -1100 [400]  a timestamp or recvWindow that is not a number
    -1131 [400]  recvWindow above 60000
    -1101 [400]  a signature both in the query and in the body
    -2015 [401]  the key is unknown or revoked
    -1021 [400]  timestamp >= server + 1000 ms, or server - timestamp > recvWindow
    -1022 [400]  the signature does not verify (or does not parse)
    -1021 [400]  this signed request was accepted before: a replay
    -2015 [401]  the key lacks the endpoint's permission (READ or TRADE)

Invariants:
- Binance has no nonce; a replay is refused instead by the one write here,
  `store.claim_signature(api_key, digest, ts_ms, forget_before_ms)`, made after
  the signature verified and the timestamp fell in the window (a forger cannot
  fill the table). The store keeps the claims durable and shared between
  gateway processes; a claim is forgotten once its timestamp is older than the
  largest window, when the window refuses it anyway. The digest is taken of
  the decoded signature, so a hex signature in other letter case is the same.
- A genuine request refused for its permission has still used its signature.
- A key's record never changes, so it is kept after its first use, with the
  Ed25519 VerifyKey made of it; a revocation still takes effect at once,
  because the claim refuses a revoked key.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Callable

import nacl.exceptions
import nacl.signing

from ...accounts import signing
from ...accounts.permissions import READ, TRADE
from ...engine.money import parse_decimal
from . import errors as E
from .errors import BinanceError
from .params import Params

DEFAULT_RECV_WINDOW_US = 5_000_000
MAX_RECV_WINDOW_MS = 60_000
FUTURE_TOLERANCE_US = 1_000_000
MICROSECONDS_ABOVE = 10**15         # a timestamp above this is in µs
PERMISSION_NAMES = {READ: "READ", TRADE: "TRADE"}


def _without_signature(raw: bytes) -> tuple[bytes, int]:
    """`raw` (a query string or form body, as sent) without its signature=... pairs, and how many there were."""
    parts = raw.split(b"&")
    kept = [p for p in parts if p.partition(b"=")[0] != b"signature"]
    return b"&".join(kept), len(parts) - len(kept)


class Signatures:
    def __init__(self, store, now_ms: Callable[[], int]):
        self.store = store
        self.now_ms = now_ms
        self._keys: dict = {}                                       # api key -> its KeyRecord
        self._verify_keys: dict[str, nacl.signing.VerifyKey] = {}  # of the kept Ed25519 keys

    def check(self, api_key: str | None, params: Params, raw_query: bytes, raw_body: bytes, permission: int):
        """The KeyRecord of a signed request, or BinanceError (codes in the module docstring).
        Reads (and so uses up) timestamp, recvWindow and signature."""
        if not api_key:
            raise BinanceError(E.BAD_API_KEY_FMT, "API-key format invalid: no X-MBX-APIKEY header")
        if not signing.API_KEY_RE.match(api_key):
            raise BinanceError(E.BAD_API_KEY_FMT, f"API-key format invalid: X-MBX-APIKEY {api_key[:40]!r} is not AK_ "
                                                  "and 16 uppercase hex digits")
        ts = params.integer("timestamp", low=1)
        if ts is None:
            raise BinanceError(E.MANDATORY_PARAM, "Mandatory parameter 'timestamp' was not sent, was empty/null, "
                                                  "or malformed.")
        ts_us = ts if ts > MICROSECONDS_ABOVE else ts * 1000
        window_us = self._recv_window_us(params.get("recvWindow"))
        signature = params.need("signature")
        query, in_query = _without_signature(raw_query)
        body, in_body = _without_signature(raw_body)
        if in_query + in_body > 1:
            raise BinanceError(E.TOO_MANY_PARAMETERS, "Duplicate values for a parameter detected: 'signature' "
                                                      "is in both the query string and the body")
        key = self._key(api_key)
        now_us = self.now_ms() * 1000
        if ts_us >= now_us + FUTURE_TOLERANCE_US:
            raise BinanceError(E.INVALID_TIMESTAMP, f"Timestamp for this request was 1000ms ahead of the server's "
                                                    f"time: timestamp {ts}, server time {now_us // 1000} ms.")
        if now_us - ts_us > window_us:
            raise BinanceError(E.INVALID_TIMESTAMP, f"Timestamp for this request is outside of the recvWindow: "
                                                    f"timestamp {ts} is {(now_us - ts_us) / 1000:g} ms behind the "
                                                    f"server time {now_us // 1000}, recvWindow "
                                                    f"{window_us / 1000:g} ms.")
        raw_signature = self._verified(key, query + body, signature)
        if raw_signature is None:
            raise BinanceError(E.INVALID_SIGNATURE, "Signature for this request is not valid: expected "
                                                    + ("HMAC-SHA256 in hex" if key.kind == signing.HMAC
                                                       else "Ed25519 in base64")
                                                    + " over the query string followed by the body, without the "
                                                      "signature parameter.")
        digest = hashlib.sha256(raw_signature).digest()
        if not self.store.claim_signature(api_key, digest, ts_us // 1000,
                                          now_us // 1000 - MAX_RECV_WINDOW_MS - FUTURE_TOLERANCE_US // 1000):
            now = self.store.key(api_key)
            if now is None or now.revoked:
                self._forget(api_key)
                raise BinanceError(E.REJECTED_MBX_KEY, f"Invalid API-key, IP, or permissions for action: api key "
                                                       f"{api_key} is unknown or revoked.")
            raise BinanceError(E.INVALID_TIMESTAMP, "This signed request was already accepted once (a replay): "
                                                    "sign it again with a new timestamp.")
        if key.permissions & permission != permission:
            raise BinanceError(E.REJECTED_MBX_KEY, f"Invalid API-key, IP, or permissions for action: api key "
                                                   f"{api_key} lacks the {PERMISSION_NAMES[permission]} permission.")
        return key

    @staticmethod
    def _recv_window_us(text: str | None) -> int:
        if text is None:
            return DEFAULT_RECV_WINDOW_US
        try:
            window_us = parse_decimal(text, 3, "recvWindow")
        except ValueError as e:
            raise BinanceError(E.ILLEGAL_CHARS, f"Illegal characters found in parameter 'recvWindow': {e} "
                                                "(milliseconds, at most three decimals).") from None
        if window_us > MAX_RECV_WINDOW_MS * 1000:
            raise BinanceError(E.BAD_RECV_WINDOW, f"recvWindow must be less than {MAX_RECV_WINDOW_MS}: got {text}.")
        return window_us

    def _key(self, api_key: str):
        key = self._keys.get(api_key)
        if key is None:
            key = self.store.key(api_key)
            if key is None or key.revoked:
                raise BinanceError(E.REJECTED_MBX_KEY, f"Invalid API-key, IP, or permissions for action: api key "
                                                       f"{api_key} is unknown or revoked.")
            self._keys[api_key] = key
        return key

    def _forget(self, api_key: str) -> None:
        self._keys.pop(api_key, None)
        self._verify_keys.pop(api_key, None)

    def _verified(self, key, payload: bytes, signature: str) -> bytes | None:
        """The signature's bytes if it verifies over `payload`, else None."""
        if key.kind == signing.HMAC:
            if len(signature) != 64 or not signature.isascii():
                return None
            expected = hmac.new(signing.hmac_key(key.hmac_secret), payload, hashlib.sha256).hexdigest()
            return bytes.fromhex(expected) if hmac.compare_digest(expected, signature.lower()) else None
        try:
            raw = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            return None
        verify_key = self._verify_keys.get(key.api_key)
        if verify_key is None:
            verify_key = self._verify_keys[key.api_key] = nacl.signing.VerifyKey(key.public_key)
        try:
            verify_key.verify(payload, raw)
        except (nacl.exceptions.BadSignatureError, ValueError):
            return None
        return raw
