"""`xinf bench wal --input DIR`: MT throughput with the order WAL synced on
every batch against the WAL not synced, in one run (group commit's worth).

Each policy runs --repeat times, alternating, into a fresh WAL directory in
--dir (default: a temporary directory on the disk of /tmp), output files not
written; the best of each is reported. Ends with mt_every_batch_orders_per_sec,
mt_off_orders_per_sec, every_batch_over_off.
"""
from __future__ import annotations

import shutil
import tempfile

from xinfinity.engine import records as R

from xinfinity.edge.dataset import load_dataset
from xinfinity.app.mt import add_pipeline_arguments, pipeline_config, run_mt
from xinfinity.runtime import progress


def add_arguments(p) -> None:
    p.add_argument("--input", required=True, help="dataset directory")
    p.add_argument("--dust", choices=sorted(R.DUST_CODES), default="release")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--dir", default=None, help="where the WALs are written (default: a temporary directory)")
    add_pipeline_arguments(p)


@progress.reported
def main(args) -> int:
    pipeline = pipeline_config(args)
    prog = progress.current()
    prog.stage("loading the dataset", compiles="load")
    ds = load_dataset(args.input)
    best = {"every_batch": 0, "off": 0}
    root = tempfile.mkdtemp(prefix="xinf-wal-", dir=args.dir)
    try:
        for r in range(args.repeat):
            for k, policy in enumerate(best):
                prog.context = f"run {r * len(best) + k + 1} of {args.repeat * len(best)} (fsync {policy})"
                wal = f"{root}/{policy}-{r}"
                perf = run_mt(None, None, args.dust, pipeline, ds=ds, wal_dir=wal, fsync=policy)
                shutil.rmtree(wal, ignore_errors=True)
                print(f"run {r + 1}, fsync {policy}: {perf['mt_orders_per_sec']:,} orders/s", flush=True)
                best[policy] = max(best[policy], perf["mt_orders_per_sec"])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"mt_every_batch_orders_per_sec={best['every_batch']}")
    print(f"mt_off_orders_per_sec={best['off']}")
    print(f"every_batch_over_off={best['every_batch'] / best['off']:.3f}")
    return 0
