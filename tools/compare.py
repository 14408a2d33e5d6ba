"""Comparing output files with expected ones under the golden rules
(../shared/golden/README.md): the golden tests and `xinf parity` use it."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from xinfinity.engine import records as R
from xinfinity.edge.outputs import (BALANCES_FILE, GOLDEN_FILES, LEDGER_FILE, ORDERBOOK_FILE, ORDERBOOK_HEADER,
                                    read_summary)

# ---------------------------------------------------------------------------
# Comparison with golden outputs
# ---------------------------------------------------------------------------

def _lines(path) -> list[bytes]:
    data = Path(path).read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def _show(line) -> str:
    if line is None:
        return "<end of file>"
    return repr(line.decode("ascii", "replace") if isinstance(line, bytes) else line)


def _diff_msg(no: int, ours, expected, why: str = "") -> str:
    return (f"line {no}{' (' + why + ')' if why else ''}: ours {_show(ours)}, "
            f"expected {_show(expected)}")


def _first_diff_line(a: bytes, b: bytes) -> tuple[int, bytes | None, bytes | None]:
    """1-based number and contents of the first line where a and b differ."""
    n = min(len(a), len(b))
    x = np.frombuffer(a, dtype=np.uint8, count=n)
    y = np.frombuffer(b, dtype=np.uint8, count=n)
    ne = np.flatnonzero(x != y)
    pos = int(ne[0]) if ne.size else n
    start = a.rfind(b"\n", 0, pos) + 1  # same prefix in both up to pos
    no = a.count(b"\n", 0, start) + 1

    def line_at(s: bytes):
        if start >= len(s):
            return None
        end = s.find(b"\n", start)
        return s[start:] if end < 0 else s[start:end]
    return no, line_at(a), line_at(b)


_NL = b"\n"


def _compare_ledger(ours: Path, exp: Path) -> tuple[bool, str]:
    a, b = ours.read_bytes(), exp.read_bytes()
    if a == b:
        return True, f"byte-identical ({b.count(_NL)} lines)"
    no, la, lb = _first_diff_line(a, b)
    return False, "not byte-identical: " + _diff_msg(no, la, lb)


def _compare_rows(ours: Path, exp: Path, check) -> tuple[bool, str]:
    """Line-by-line comparison: headers equal, same number of lines, and
    check(ours_line, expected_line) -> None, or the reason they differ, for each data row."""
    la, lb = _lines(ours), _lines(exp)
    for i in range(max(len(la), len(lb))):
        a = la[i] if i < len(la) else None
        b = lb[i] if i < len(lb) else None
        if a is None or b is None:
            return False, _diff_msg(i + 1, a, b, "row count differs")
        if i == 0:
            if a != b:
                return False, _diff_msg(1, a, b, "header differs")
            continue
        if a == b:
            continue
        try:
            why = check(a, b)
        except ValueError:
            why = "not an integer"
        if why:
            return False, _diff_msg(i + 1, a, b, why)
    return True, f"{max(len(lb) - 1, 0)} rows match"


def _check_balance_row(keep: bool):
    def check(a, b):
        a, b = a.split(b","), b.split(b",")
        if len(a) != 5 or len(b) != 5:
            return "column count differs"
        if int(a[0]) != int(b[0]) or int(a[1]) != int(b[1]):
            return "user_id/asset_id differ"
        if keep:
            if int(a[2]) != int(b[2]):
                return "avail differs"
            if int(a[3]) != int(b[3]):
                return "frozen differs"
        elif int(a[2]) + int(a[3]) != int(b[2]) + int(b[3]):
            return "avail+frozen differs"
        return None
    return check


def _check_orderbook_row(a, b):
    # every column but the last (status) must be the same text
    if a.rpartition(b",")[0] == b.rpartition(b",")[0]:
        return None
    fa, fb = a.split(b","), b.split(b",")
    if len(fa) != 8 or len(fb) != 8:
        return "column count differs"
    for k in range(7):
        if fa[k] != fb[k]:
            return f"{ORDERBOOK_HEADER.split(',')[k]} differs"
    return None


def _compare_summary(ours: Path, exp: Path) -> tuple[bool, str]:
    a = read_summary(ours)
    lines = Path(exp).read_text(encoding="ascii").splitlines()
    n = 0
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        k, _, v = line.partition("=")
        n += 1
        if a.get(k) != v:
            mine = f"{k}={a[k]}" if k in a else None
            return False, _diff_msg(no, mine, line, f"{k} differs" if mine else f"{k} missing")
    return True, f"{n} values match"


def compare_outputs(ours_dir, expected_dir, dust="release") -> list[tuple[str, bool, str]]:
    """Verdict ``(file name, ok, message)`` for each golden file present in
    ``expected_dir`` (in GOLDEN_FILES order), with the golden rules:

    - ledger: byte-identical;
    - balances: per row, same user and asset, and avail and frozen equal under dust
      ``keep``, avail + frozen equal under ``release``; version is not compared;
    - orderbook: every column but status equal, row by row;
    - summary: every key of the expected summary has the same value in ours.

    A failing verdict's message names the first differing line: its number and the
    line in both files.
    """
    if not isinstance(dust, str):
        dust = R.DUST_NAMES[int(dust)]
    if dust not in ("release", "keep"):
        raise ValueError(f"dust must be 'release' or 'keep', not {dust!r}")
    ours_dir, expected_dir = Path(ours_dir), Path(expected_dir)
    verdicts = []
    for name in GOLDEN_FILES:
        exp = expected_dir / name
        if not exp.exists():
            continue
        ours = ours_dir / name
        if not ours.exists():
            verdicts.append((name, False, f"missing: {ours}"))
            continue
        if name == LEDGER_FILE:
            ok, msg = _compare_ledger(ours, exp)
        elif name == BALANCES_FILE:
            ok, msg = _compare_rows(ours, exp, _check_balance_row(dust == "keep"))
            if ok:
                msg += (" (avail, frozen)" if dust == "keep" else " (avail+frozen)")
        elif name == ORDERBOOK_FILE:
            ok, msg = _compare_rows(ours, exp, _check_orderbook_row)
            if ok:
                msg += " (status not compared)"
        else:
            ok, msg = _compare_summary(ours, exp)
        verdicts.append((name, ok, msg))
    return verdicts
