"""Login tokens: JWTs signed with HS256 under one secret the gateway's workers share.

A token says "user N until time T" and nothing else (claims `sub`, `iat`,
`exp`). It is stateless: none is stored, so a token cannot be revoked before
it expires; its lifetime (`ttl_s`) bounds that, and replacing the secret file
ends every token at once. The caller passes the time (`now_s`), so expiry is
tested without waiting and every worker judges by the clock it is given.

The secret is 32 random bytes in a file only its owner may read, made once by
whichever process gets there first (`load_or_create_secret`).
"""
from __future__ import annotations

import os
import pathlib
import secrets

import jwt

from .errors import AUTH_FAILED, AccountError

ALGORITHM = "HS256"
SECRET_BYTES = 32       # HS256 wants a key at least as long as its 32-byte hash (RFC 7518 3.2)
AHEAD_S = 60            # a token issued further in the future than this was not issued by this clock


class TokenIssuer:
    def __init__(self, secret: bytes, ttl_s: int):
        if not isinstance(secret, bytes) or len(secret) < SECRET_BYTES:
            raise ValueError(f"token secret: at least {SECRET_BYTES} bytes")
        if not isinstance(ttl_s, int) or ttl_s <= 0:
            raise ValueError(f"token ttl_s: a positive number of seconds, not {ttl_s!r}")
        self._secret = secret
        self.ttl_s = ttl_s

    def issue(self, user_id: int, now_s: int) -> str:
        # `sub` is a string: RFC 7519 says so and PyJWT checks it.
        return jwt.encode({"sub": str(user_id), "iat": now_s, "exp": now_s + self.ttl_s},
                          self._secret, algorithm=ALGORITHM)

    def verify(self, token: str, now_s: int) -> int:
        """The user id the token was issued to; AccountError 2002 if it is not
        one of ours, was altered, or has expired at `now_s`."""
        try:
            claims = jwt.decode(token, self._secret, algorithms=[ALGORITHM],
                                options={"require": ["sub", "iat", "exp"],
                                         # Time is judged below, against now_s, not PyJWT's clock.
                                         "verify_exp": False, "verify_iat": False, "verify_nbf": False})
        except (jwt.InvalidTokenError, TypeError, ValueError):
            raise AccountError(AUTH_FAILED, "token: invalid") from None
        sub, iat, exp = claims["sub"], claims["iat"], claims["exp"]
        if not (isinstance(sub, str) and sub.isdigit() and isinstance(iat, int) and isinstance(exp, int)):
            raise AccountError(AUTH_FAILED, "token: invalid")
        if iat > now_s + AHEAD_S:
            raise AccountError(AUTH_FAILED, "token: issued in the future")
        if now_s >= exp:
            raise AccountError(AUTH_FAILED, "token: expired; log in again")
        return int(sub)


def load_or_create_secret(path) -> bytes:
    """The 32-byte secret in `path`, made first if the file does not exist.

    Processes racing to make it all end with the same secret: each writes its
    own complete temporary file and hard-links it to `path`, which succeeds for
    exactly one; the others read the winner's. A reader therefore never sees a
    half-written file, and a crash leaves no empty one behind."""
    path = pathlib.Path(path)
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            written = os.write(fd, secrets.token_bytes(SECRET_BYTES))
            assert written == SECRET_BYTES, written
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass    # another process linked its secret first; use that one
    finally:
        os.unlink(tmp)
    return _read_secret(path)


def _read_secret(path: pathlib.Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        mode = os.fstat(fd).st_mode & 0o777
        if mode & 0o077:
            raise ValueError(f"{path}: the token secret is readable by others (mode {mode:o}); chmod 600 it")
        data = os.read(fd, SECRET_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) != SECRET_BYTES:
        raise ValueError(f"{path}: {len(data)} bytes, expected a {SECRET_BYTES}-byte token secret")
    return data
