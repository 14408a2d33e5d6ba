"""The one error the accounts package raises for a request it refuses.

`AccountError(code, message)` carries the code of the API envelope
(spec/API.md section 1), so the gateway answers `{"code": e.code, "msg":
e.message}` without a table of its own, and the operator CLI prints the message.
The message names the field or the thing that was wrong.
"""
from __future__ import annotations

INVALID_PARAMETER = 1001    # a malformed username, email, password, label, permission
TAKEN = 1005                # the username or email belongs to another user (ours)
AUTH_FAILED = 2002          # a bad or expired token
INTERNAL = 5000             # the store itself is unusable (e.g. a newer schema)


class AccountError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message
