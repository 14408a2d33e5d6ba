"""xinfinity: a deterministic crypto spot exchange core.

Numba's on-disk cache is keyed per function by its own file's timestamp, but a
cached kernel embeds the machine code of every function it calls from other
files: edit hashmap.py and book.py's cached kernels would keep the old hash
function while new code uses the new one. So the cache lives in a directory
named after a digest of all the project's numba sources; any edit starts a
fresh cache, and an unchanged tree always reuses it.
"""
import hashlib
import os
import pathlib

_ROOT = pathlib.Path(__file__).resolve().parent


def _numba_cache_dir() -> str:
    h = hashlib.sha256()
    for pkg in ("engine", "ipc", "edge", "storage", "runtime", "services", "app", "tools"):
        for f in sorted((_ROOT / pkg).glob("*.py")):
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return str(_ROOT / ".numba_cache" / h.hexdigest()[:16])


if "NUMBA_CACHE_DIR" not in os.environ:
    import numba

    numba.config.CACHE_DIR = _numba_cache_dir()
