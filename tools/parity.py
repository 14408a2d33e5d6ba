"""`xinf parity`: the MT pipeline must give exactly the ST pipeline's files.

Runs both on the dataset, then compares every output file but perf.txt byte
for byte, printing one verdict per file (with the first difference: the line
of a text file, the record and field of an event file). Exits 1 on any
difference or missing file, 2 on bad input.
"""
from __future__ import annotations

import pathlib
import tempfile

import numpy as np

from xinfinity.engine import records as R

from xinfinity.app.mt import add_pipeline_arguments, pipeline_config, run_mt
from .compare import _first_diff_line, _show
from xinfinity.app.st import run_st
from xinfinity.runtime import progress

EVENT_FILES = {"events_order.bin": R.ORDER_EVENT, "events_trade.bin": R.TRADE_EVENT,
               "events_balance.bin": R.BALANCE_EVENT}
NOT_COMPARED = {"perf.txt"}


def _first_difference(name: str, a: bytes, b: bytes) -> str:
    dtype = EVENT_FILES.get(name)
    if dtype is None:
        no, la, lb = _first_diff_line(a, b)
        return f"line {no}: st {_show(la)}, mt {_show(lb)}"
    if len(a) != len(b):
        return f"st has {len(a) // dtype.itemsize} records, mt {len(b) // dtype.itemsize}"
    x = np.frombuffer(a, dtype)
    y = np.frombuffer(b, dtype)
    i = int(np.flatnonzero(x != y)[0])
    fields = [f for f in dtype.names if not np.array_equal(x[i][f], y[i][f])]
    return f"record {i} (seq {int(x[i]['seq'])}), fields {', '.join(fields)}"


def compare_dirs(st_dir, mt_dir) -> list[tuple[str, bool, str]]:
    """(file, identical, detail) for every file either pipeline wrote."""
    st_dir, mt_dir = pathlib.Path(st_dir), pathlib.Path(mt_dir)
    names = sorted({p.name for p in st_dir.iterdir()} | {p.name for p in mt_dir.iterdir()})
    verdicts = []
    for name in names:
        if name in NOT_COMPARED:
            continue
        a, b = st_dir / name, mt_dir / name
        if not a.exists() or not b.exists():
            verdicts.append((name, False, f"missing from {'st' if not a.exists() else 'mt'}"))
            continue
        x, y = a.read_bytes(), b.read_bytes()
        if x == y:
            verdicts.append((name, True, f"identical ({len(x)} bytes)"))
        else:
            verdicts.append((name, False, "differs at " + _first_difference(name, x, y)))
    return verdicts


def add_arguments(p) -> None:
    p.add_argument("--input", required=True, help="dataset directory")
    p.add_argument("--dust", choices=sorted(R.DUST_CODES), default="release")
    add_pipeline_arguments(p)
    p.add_argument("--out", default=None, help="keep both runs' files here (st/ and mt/); default: a temporary directory")


@progress.reported
def main(args) -> int:
    pipeline = pipeline_config(args)
    prog = progress.current()
    with tempfile.TemporaryDirectory(prefix="xinf-parity-") as tmp:
        base = pathlib.Path(args.out or tmp)
        prog.context = "ST (1 of 2)"
        st = run_st(args.input, base / "st", args.dust)
        prog.context = "MT (2 of 2)"
        mt = run_mt(args.input, base / "mt", args.dust, pipeline)
        prog.context = ""
        prog.stage("comparing the files")
        verdicts = compare_dirs(base / "st", base / "mt")
        for name, ok, detail in verdicts:
            print(f"{name}: {'OK' if ok else 'DIFFERENT'}: {detail}")
        bad = sum(not ok for _, ok, _ in verdicts)
        print(f"st_orders_per_sec={st['core_orders_per_sec']} mt_orders_per_sec={mt['mt_orders_per_sec']} "
              f"wait={mt['wait']} stalls={mt['ubscore.stalls']}")
        print(f"parity={'passed' if bad == 0 else 'FAILED'} files={len(verdicts)} different={bad}")
        return 1 if bad else 0
