"""The exchange's client side: a synchronous REST client (http.py), its key files (keys.py), `xinf order|balance|deposit|withdraw` (cli.py)."""
from .http import ApiError, ConnectionLost, ServerUnreachable, XinfClient, decimal_text
from .keys import KeyFile, KeyFileError, next_nonce

__all__ = ["XinfClient", "KeyFile", "KeyFileError", "ApiError", "ServerUnreachable", "ConnectionLost",
           "decimal_text", "next_nonce"]
