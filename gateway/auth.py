"""Who is asking: signed requests (API keys) and login tokens (JWT).

A signed request carries `Authorization: ZXINF v1.<api_key>.<ts_nonce>.<sig>`
over `api_key + ts_nonce + METHOD + path_with_query + body` (accounts/signing.py).
`Authenticator.signed` runs before a route's handler and before its body is
decoded into a command, and checks in this order, the first failure answering:

    2001 [401]  no Authorization header
    2002 [401]  the header does not parse, or the signature does not verify
    2003 [401]  the api key is unknown or revoked
    2004 [401]  |now_ms - ts_nonce| > window_ms
    2005 [401]  ts_nonce is not above the key's last accepted one (a replay)
    2006 [403]  the key lacks the route's permission bit

Invariants:
- The only write is `store.advance_nonce(api_key, ts_nonce)`, made after the
  signature verified: a forger, who cannot sign, cannot burn a key's nonces;
  the store makes the advance atomic and durable, so a replay is refused across
  restarts and across gateway processes sharing the store.
- The permission is checked after the nonce advanced: a signed request of a
  key without the bit still uses up its nonce (it was genuine, just refused).
- A key's record never changes (material, user, permissions), so it is kept
  after its first use, with the Ed25519 VerifyKey made of it. A revocation
  still takes effect at once: the nonce's advance refuses a revoked key, and
  the request is then answered 2003 (for a key already kept, after the window
  and signature checks).
- path_with_query is the path granian hands over (percent-decoded) plus '?'
  and the raw query string when there is one. Every route path is plain ASCII
  with nothing to escape, so it is the path the client sent; a client that
  escapes a character that needs none signs a different text and is refused.

The permission bits are spec/API.md's (READ 1, TRADE 2, WITHDRAW 4, TRANSFER 8)
plus ours, ADMIN 16, as xinfinity.accounts.store defines them; a key with ADMIN
does not hold the others.
"""
from __future__ import annotations

from typing import Callable

import nacl.signing

from ..accounts import signing
from .api import (AUTH_FAILED, MISSING_AUTH, PERMISSION_DENIED, REPLAYED_NONCE, STALE_NONCE, UNKNOWN_KEY,
                  ApiError)


class Authenticator:
    def __init__(self, store, now_ms: Callable[[], int], window_ms: int = 30000, tokens=None):
        self.store = store
        self.now_ms = now_ms
        self.window_ms = window_ms
        self.tokens = tokens
        self._verify_keys: dict[str, nacl.signing.VerifyKey] = {}     # of the kept Ed25519 keys
        self._keys: dict = {}          # api key -> its record (material, user, permissions)

    def signed(self, authorization: str | None, method: str, path_with_query: str, body: bytes,
               permission: int) -> int:
        """The user_id of a signed request, or ApiError (codes in the module docstring)."""
        if not authorization:
            raise ApiError(MISSING_AUTH, "missing Authorization header (ZXINF v1.<api_key>.<ts_nonce>.<signature>)")
        try:
            api_key, ts_nonce, signature = signing.parse_authorization(authorization)
        except signing.SignatureFormatError as e:
            raise ApiError(AUTH_FAILED, str(e)) from None
        # A key's material and permissions never change, so they are kept; revocation is
        # checked by the nonce's advance below (it refuses a revoked key) and then named.
        key = self._keys.get(api_key)
        if key is None:
            key = self.store.key(api_key)
            if key is None or key.revoked:
                raise ApiError(UNKNOWN_KEY, f"api key {api_key} is unknown or revoked")
            self._keys[api_key] = key
        now_ms = self.now_ms()
        if abs(now_ms - ts_nonce) > self.window_ms:
            raise ApiError(STALE_NONCE, f"ts_nonce {ts_nonce} is more than {self.window_ms} ms "
                                        f"from the server time {now_ms}")
        data = signing.payload(api_key, ts_nonce, method, path_with_query, body)
        if not self._verifies(key, data, signature):
            raise ApiError(AUTH_FAILED, "signature does not verify over api_key + ts_nonce + METHOD + "
                                        "path_with_query + body")
        if not self.store.advance_nonce(api_key, ts_nonce):
            now = self.store.key(api_key)
            if now is None or now.revoked:
                self._keys.pop(api_key, None)
                self._verify_keys.pop(api_key, None)
                raise ApiError(UNKNOWN_KEY, f"api key {api_key} is unknown or revoked")
            raise ApiError(REPLAYED_NONCE, f"ts_nonce {ts_nonce} is not above the last one accepted for {api_key}")
        if key.permissions & permission != permission:
            raise ApiError(PERMISSION_DENIED, f"api key {api_key} lacks the permission this route needs")
        return key.user_id

    def bearer(self, authorization: str | None) -> int:
        """The user_id of `Authorization: Bearer <JWT>`, or ApiError 2001/2002 (AccountError 2002 for a bad token)."""
        if not authorization:
            raise ApiError(MISSING_AUTH, "missing Authorization header (Bearer <token> from /api/v1/auth/login)")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise ApiError(AUTH_FAILED, "Authorization: expected Bearer <token>")
        return self.tokens.verify(token.strip(), self.now_ms() // 1000)     # AccountError 2002 if not valid

    def _verifies(self, key, data: bytes, signature: str) -> bool:
        if key.kind == signing.HMAC:
            # compare_digest refuses a non-ASCII str with TypeError: such a signature is simply wrong.
            return (key.hmac_secret is not None and signature.isascii()
                    and signing.verify_hmac(signing.hmac_key(key.hmac_secret), data, signature))
        if key.kind != signing.ED25519 or key.public_key is None:
            return False
        verify_key = self._verify_keys.get(key.api_key)
        if verify_key is None:
            verify_key = self._verify_keys[key.api_key] = nacl.signing.VerifyKey(key.public_key)
        return signing.verify_ed25519(verify_key, data, signature)
