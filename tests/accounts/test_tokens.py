"""Login tokens: a token names the user it was issued to until it expires;
an expired, altered or foreign token is refused with 2002; the secret file is
made once, owner-only, and racing processes end up with the same secret."""
import base64
import json
import subprocess
import sys

import jwt
import pytest

from xinfinity.accounts.errors import AUTH_FAILED, AccountError
from xinfinity.accounts.tokens import TokenIssuer, load_or_create_secret

NOW = 1_800_000_000
SECRET = bytes(range(32))


def _refused(issuer: TokenIssuer, token, now_s: int = NOW) -> str:
    with pytest.raises(AccountError) as e:
        issuer.verify(token, now_s)
    assert e.value.code == AUTH_FAILED
    return e.value.message


def test_a_token_names_its_user_until_it_expires():
    issuer = TokenIssuer(SECRET, ttl_s=3600)
    token = issuer.issue(1000, NOW)
    assert issuer.verify(token, NOW) == 1000
    assert issuer.verify(token, NOW + 3599) == 1000
    assert "expired" in _refused(issuer, token, NOW + 3600)


def test_an_altered_token_is_refused():
    issuer = TokenIssuer(SECRET, ttl_s=3600)
    header, claims, signature = issuer.issue(1000, NOW).split(".")
    forged = json.loads(base64.urlsafe_b64decode(claims + "=="))
    forged["sub"] = "1001"
    forged_claims = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    _refused(issuer, f"{header}.{forged_claims}.{signature}")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    _refused(issuer, f"{header}.{claims}.{flipped}")


def test_a_token_from_another_secret_or_algorithm_or_garbage_is_refused():
    issuer = TokenIssuer(SECRET, ttl_s=3600)
    _refused(issuer, TokenIssuer(bytes(32), ttl_s=3600).issue(1000, NOW))
    unsigned = jwt.encode({"sub": "1000", "iat": NOW, "exp": NOW + 60}, None, algorithm="none")
    _refused(issuer, unsigned)
    no_exp = jwt.encode({"sub": "1000", "iat": NOW}, SECRET, algorithm="HS256")
    _refused(issuer, no_exp)
    for junk in ("", "a.b.c", None, 42):
        _refused(issuer, junk)


def test_a_token_issued_in_the_future_is_refused():
    issuer = TokenIssuer(SECRET, ttl_s=3600)
    assert "future" in _refused(issuer, issuer.issue(1000, NOW + 600), NOW)


def test_a_short_secret_or_a_non_positive_ttl_is_refused():
    with pytest.raises(ValueError):
        TokenIssuer(b"short", ttl_s=60)
    with pytest.raises(ValueError):
        TokenIssuer(SECRET, ttl_s=0)


def test_the_secret_file_is_made_once_owner_only_and_then_read_back(tmp_path):
    path = tmp_path / "jwt.secret"
    secret = load_or_create_secret(path)
    assert len(secret) == 32 and path.read_bytes() == secret
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_secret(path) == secret
    assert [p.name for p in tmp_path.iterdir()] == ["jwt.secret"]


def test_a_secret_file_others_can_read_or_of_the_wrong_size_is_refused(tmp_path):
    path = tmp_path / "jwt.secret"
    load_or_create_secret(path)
    path.chmod(0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        load_or_create_secret(path)
    path.chmod(0o600)
    path.write_bytes(b"x" * 31)
    with pytest.raises(ValueError, match="31 bytes"):
        load_or_create_secret(path)


def test_processes_racing_to_make_the_secret_all_get_the_same_one(tmp_path):
    path, go = tmp_path / "jwt.secret", tmp_path / "go"
    script = ("import os, sys, time\n"
              "from xinfinity.accounts.tokens import load_or_create_secret\n"
              "print('ready', flush=True)\n"
              f"while not os.path.exists({str(go)!r}): time.sleep(0.0005)\n"
              f"print(load_or_create_secret({str(path)!r}).hex())\n")
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(4)]
    for p in procs:
        assert p.stdout.readline() == "ready\n"
    go.touch()
    secrets = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert secrets == {path.read_bytes().hex()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["go", "jwt.secret"]
