"""tools/compare.py: the golden comparison rules (shared/golden/README.md)
against the baseline outputs: what must match byte for byte, what is
ignored (the status column, versions), how dust is judged, and that one
changed digit anywhere is found."""
import shutil
from pathlib import Path

import pytest

from xinfinity.engine import records as R
from xinfinity.edge import outputs as O
from xinfinity.tools.compare import compare_outputs

BASELINE = Path(__file__).resolve().parents[2] / "baseline" / "zxi-100k"


def _copy(tmp_path):
    d = tmp_path / "ours"
    shutil.copytree(BASELINE, d)
    return d


def _edit_line(path, lineno, fn):
    """Replace line ``lineno`` (1-based) by fn(line); return (old, new)."""
    lines = path.read_bytes().split(b"\n")
    old = lines[lineno - 1]
    lines[lineno - 1] = fn(old)
    path.write_bytes(b"\n".join(lines))
    return old.decode(), lines[lineno - 1].decode()


def _bump_digit(line: bytes, field: int) -> bytes:
    f = line.split(b",")
    d = f[field]
    f[field] = d[:-1] + str((int(d[-1:]) + 1) % 10).encode()
    return b",".join(f)


def _verdicts(ours, dust):
    v = compare_outputs(ours, BASELINE, dust)
    assert [n for n, _, _ in v] == list(O.GOLDEN_FILES)
    return {n: (ok, msg) for n, ok, msg in v}


@pytest.mark.parametrize("dust", ["release", "keep", R.DUST_KEEP])
def test_compare_baseline_with_itself(dust):
    for name, (ok, msg) in _verdicts(BASELINE, dust).items():
        assert ok, (name, msg)


@pytest.mark.parametrize("name,lineno,field", [
    (O.LEDGER_FILE, 1234, 4), (O.LEDGER_FILE, 191545, 5), (O.LEDGER_FILE, 2, 0),
    (O.BALANCES_FILE, 77, 2), (O.BALANCES_FILE, 2001, 3), (O.BALANCES_FILE, 5, 1),
    (O.ORDERBOOK_FILE, 4000, 5), (O.ORDERBOOK_FILE, 52115, 4), (O.ORDERBOOK_FILE, 9, 6),
])
def test_compare_one_changed_digit(tmp_path, name, lineno, field):
    ours = _copy(tmp_path)
    old, new = _edit_line(ours / name, lineno, lambda ln: _bump_digit(ln, field))
    for dust in ("release", "keep"):
        v = _verdicts(ours, dust)
        ok, msg = v[name]
        assert not ok
        assert f"line {lineno}" in msg and repr(new) in msg and repr(old) in msg, msg
        assert all(ok for n, (ok, _) in v.items() if n != name)


def test_compare_summary_digit(tmp_path):
    ours = _copy(tmp_path)
    old, new = _edit_line(ours / O.SUMMARY_FILE, 7, lambda ln: ln[:-1] + b"7")
    assert old == "trades=47886" and new == "trades=47887"
    ok, msg = _verdicts(ours, "release")[O.SUMMARY_FILE]
    assert not ok and "line 7" in msg and "trades=47887" in msg and "trades=47886" in msg
    # a missing key fails; an extra key of ours is fine
    items = O.read_summary(BASELINE / O.SUMMARY_FILE)
    del items["best_ask"]
    items["extra"] = 1
    O.write_summary(ours / O.SUMMARY_FILE, items)
    ok, msg = _verdicts(ours, "release")[O.SUMMARY_FILE]
    assert not ok and "line 9" in msg and "best_ask" in msg
    items["best_ask"] = "8502383"
    O.write_summary(ours / O.SUMMARY_FILE, items)
    assert _verdicts(ours, "release")[O.SUMMARY_FILE][0]


def test_compare_ledger_length_and_line_endings(tmp_path):
    ours = _copy(tmp_path)
    data = (BASELINE / O.LEDGER_FILE).read_bytes()
    (ours / O.LEDGER_FILE).write_bytes(data + b"47887,1,1,debit,1,1\n")
    ok, msg = _verdicts(ours, "keep")[O.LEDGER_FILE]
    assert not ok and "line 191546" in msg and "<end of file>" in msg
    (ours / O.LEDGER_FILE).write_bytes(data.replace(b"\n", b"\r\n"))
    ok, msg = _verdicts(ours, "keep")[O.LEDGER_FILE]
    assert not ok and "line 1:" in msg and "\\r" in msg


def test_compare_status_column_ignored(tmp_path):
    ours = _copy(tmp_path)
    p = ours / O.ORDERBOOK_FILE
    lines = p.read_bytes().split(b"\n")
    changed = 0
    for i in range(1, len(lines)):
        f = lines[i].split(b",")
        if len(f) == 8 and f[6] != b"0":
            f[7] = b"PARTIALLY_FILLED"
            lines[i] = b",".join(f)
            changed += 1
    assert changed > 0
    p.write_bytes(b"\n".join(lines))
    for dust in ("release", "keep"):
        assert all(ok for ok, _ in _verdicts(ours, dust).values())


def test_compare_version_ignored(tmp_path):
    ours = _copy(tmp_path)
    _edit_line(ours / O.BALANCES_FILE, 2, lambda ln: _bump_digit(ln, 4))
    for dust in ("release", "keep"):
        assert _verdicts(ours, dust)[O.BALANCES_FILE][0]


def test_compare_frozen_moved_into_avail(tmp_path):
    ours = _copy(tmp_path)
    p = ours / O.BALANCES_FILE
    lines = p.read_bytes().split(b"\n")
    first = None
    for i in range(1, len(lines)):
        f = lines[i].split(b",")
        if len(f) == 5 and f[3] != b"0":
            f[2], f[3] = str(int(f[2]) + int(f[3])).encode(), b"0"
            lines[i] = b",".join(f)
            first = first or i + 1
    p.write_bytes(b"\n".join(lines))
    assert first == 2
    assert all(ok for ok, _ in _verdicts(ours, "release").values())
    ok, msg = _verdicts(ours, "keep")[O.BALANCES_FILE]
    assert not ok and "line 2" in msg and "avail differs" in msg


def test_compare_missing_and_bad_dust(tmp_path):
    ours = _copy(tmp_path)
    (ours / O.ORDERBOOK_FILE).unlink()
    v = _verdicts(ours, "release")
    assert not v[O.ORDERBOOK_FILE][0] and "missing" in v[O.ORDERBOOK_FILE][1]
    with pytest.raises(ValueError):
        compare_outputs(ours, BASELINE, "sometimes")


