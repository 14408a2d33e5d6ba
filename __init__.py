"""xinfinity: a deterministic crypto spot exchange core.

Numba's on-disk cache is keyed per function by its own file's timestamp, but a
cached kernel embeds the machine code of every function it calls from other
files: edit hashmap.py and book.py's cached kernels would keep the old hash
function while new code uses the new one. So the cache lives in a directory
named after a digest of all the project's numba sources (`_numba_sources`); any
edit of them starts a fresh cache, and an unchanged tree always reuses it.
"""
import hashlib
import os
import pathlib

_ROOT = pathlib.Path(__file__).resolve().parent


# Besides every module with a kernel, those whose constants kernels compile in.
_KERNEL_CONSTANTS = ("runtime/control.py", "runtime/topology.py")
_KERNEL_MARKS = (b"@kernel", b"@intrinsic", b"@njit", b"njit(")


def _numba_sources() -> list[pathlib.Path]:
    """engine/ and ipc/ whole, and elsewhere the modules with kernels (or their constants): an
    edit anywhere else (the gateway, the apps, the services' shells) keeps the cache."""
    found = []
    for pkg in ("engine", "ipc", "edge", "storage", "runtime", "services", "app", "tools"):
        for f in sorted((_ROOT / pkg).glob("*.py")):
            rel = f"{pkg}/{f.name}"
            if pkg in ("engine", "ipc") or rel in _KERNEL_CONSTANTS or any(m in f.read_bytes() for m in _KERNEL_MARKS):
                found.append(f)
    return found


def _numba_cache_dir() -> str:
    h = hashlib.sha256()
    for f in _numba_sources():
        h.update(str(f.relative_to(_ROOT)).encode())
        h.update(f.read_bytes())
    return str(_ROOT / ".numba_cache" / h.hexdigest()[:16])


# True when this process started with no compiled kernels for this tree (the first start
# compiles for minutes; the commands that start the exchange say so).
COLD_CACHE = False

if "NUMBA_CACHE_DIR" not in os.environ:
    import numba

    numba.config.CACHE_DIR = _numba_cache_dir()
    COLD_CACHE = not os.path.isdir(numba.config.CACHE_DIR)
