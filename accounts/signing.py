"""Request signing, shared by the gateway (verify) and the client (sign).

0xInfinity's scheme (spec/API.md section 1), with the body covered:

    Authorization: ZXINF v1.<api_key>.<ts_nonce>.<signature>
    payload = api_key + ts_nonce + METHOD + path_with_query + body (exact bytes)

Ed25519 keys sign with the 32-byte seed (pynacl); the signature is the
64-byte Ed25519 signature in Base62 (alphabet 0-9A-Za-z, big-endian integer,
left-padded to 64 bytes when decoded). HMAC keys sign the same payload with
HMAC-SHA256, hex. A key is `AK_` + 16 uppercase hex digits.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re

import nacl.exceptions
import nacl.signing

SCHEME = "ZXINF"
VERSION = "v1"
ED25519, HMAC = "ed25519", "hmac"
API_KEY_RE = re.compile(r"AK_[0-9A-F]{16}\Z")
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_B62_INDEX = {c: i for i, c in enumerate(_B62)}
# PKCS#8 DER of an Ed25519 private key is this prefix + the 32-byte seed (RFC 8410).
_PKCS8_PREFIX = bytes.fromhex("302e020100300506032b657004220420")


class SignatureFormatError(ValueError):
    """An Authorization header or signature that cannot even be parsed."""


def base62_encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    if n == 0:
        return "0"
    out = []
    while n:
        n, r = divmod(n, 62)
        out.append(_B62[r])
    return "".join(reversed(out))


def base62_decode(text: str, length: int = 64) -> bytes:
    """Base62 text as `length` big-endian bytes (left-padded)."""
    if not text or len(text) > 90:
        raise SignatureFormatError("signature: empty or too long for Base62")
    n = 0
    for ch in text:
        d = _B62_INDEX.get(ch)
        if d is None:
            raise SignatureFormatError(f"signature: {ch!r} is not a Base62 digit")
        n = n * 62 + d
    try:
        return n.to_bytes(length, "big")
    except OverflowError:
        raise SignatureFormatError(f"signature: more than {length} bytes") from None


def payload(api_key: str, ts_nonce: int, method: str, path_with_query: str, body: bytes) -> bytes:
    return f"{api_key}{ts_nonce}{method.upper()}{path_with_query}".encode() + body


def sign_ed25519(seed: bytes, data: bytes) -> str:
    return base62_encode(nacl.signing.SigningKey(seed).sign(data).signature)


def verify_ed25519(public_key: bytes | nacl.signing.VerifyKey, data: bytes, signature: str) -> bool:
    """public_key: its bytes, or a VerifyKey made of them once (making one costs ~40 us)."""
    key = public_key if isinstance(public_key, nacl.signing.VerifyKey) else nacl.signing.VerifyKey(public_key)
    try:
        key.verify(data, base62_decode(signature))
        return True
    except (nacl.exceptions.BadSignatureError, SignatureFormatError, ValueError):
        return False


def hmac_key(secret: bytes) -> bytes:
    """The HMAC key of a secret: the text the user holds (hex), as bytes, which is how CCXT and
    the Binance clients key their HMAC."""
    return secret.hex().encode()


def sign_hmac(secret: bytes, data: bytes) -> str:
    return hmac.new(secret, data, hashlib.sha256).hexdigest()


def verify_hmac(secret: bytes, data: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign_hmac(secret, data), signature.lower() if len(signature) == 64 else "")


def public_key_of(seed: bytes) -> bytes:
    return bytes(nacl.signing.SigningKey(seed).verify_key)


def authorization(api_key: str, ts_nonce: int, signature: str) -> str:
    return f"{SCHEME} {VERSION}.{api_key}.{ts_nonce}.{signature}"


def parse_authorization(value: str) -> tuple[str, int, str]:
    """(api_key, ts_nonce, signature) of an Authorization header value."""
    scheme, _, rest = value.partition(" ")
    if scheme != SCHEME:
        raise SignatureFormatError(f"Authorization: expected the {SCHEME} scheme")
    parts = rest.split(".")
    if len(parts) != 4 or parts[0] != VERSION:
        raise SignatureFormatError(f"Authorization: expected {VERSION}.<api_key>.<ts_nonce>.<signature>")
    _, api_key, nonce, signature = parts
    if not API_KEY_RE.match(api_key):
        raise SignatureFormatError("Authorization: the api key is not AK_ and 16 uppercase hex digits")
    if not nonce.isdigit() or len(nonce) > 18:
        raise SignatureFormatError("Authorization: ts_nonce is not a millisecond timestamp")
    return api_key, int(nonce), signature


def ed25519_pem(seed: bytes) -> str:
    """The seed as a PKCS#8 PEM private key (what CCXT and OpenSSL take)."""
    b64 = base64.b64encode(_PKCS8_PREFIX + seed).decode()
    return f"-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n"


def seed_of_pem(pem: str) -> bytes:
    body = "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))
    der = base64.b64decode(body)
    if len(der) != 48 or not der.startswith(_PKCS8_PREFIX):
        raise ValueError("not an Ed25519 PKCS#8 private key")
    return der[16:]


def sign_request(kind: str, api_key: str, secret: bytes, ts_nonce: int, method: str, path_with_query: str,
                 body: bytes = b"") -> str:
    """The Authorization header value of a request (kind: ED25519 with the seed, HMAC with the secret)."""
    data = payload(api_key, ts_nonce, method, path_with_query, body)
    sig = sign_ed25519(secret, data) if kind == ED25519 else sign_hmac(secret, data)
    return authorization(api_key, ts_nonce, sig)
