"""`xinf`: the one command-line entry point (run, pipelines, fixtures, benchmarks)."""
from __future__ import annotations

import argparse
import sys


def _add_tool(sub, name, module, help):
    """A subcommand whose module (`app.X` or `tools.X`) defines add_arguments(parser) and main(args)."""
    import importlib
    mod = importlib.import_module(f"xinfinity.{module}")
    p = sub.add_parser(name, help=help)
    mod.add_arguments(p)
    p.set_defaults(func=mod.main)
    return p


def _reporting(func, label: str):
    """func(args) inside a progress report that says `label` and the time (runtime/progress.py), for a tool
    that counts nothing itself: its module holds kernels, and an edit there recompiles every kernel."""
    def run(args):
        from xinfinity.runtime import progress
        with progress.task() as p:
            p.stage(label, compiles=label)
            return func(args)
    return run


def _add_bench(sub):
    b = sub.add_parser("bench", help="benchmarks (figures measured in one run)")
    bsub = b.add_subparsers(dest="what", required=True)
    _add_tool(bsub, "engine", "tools.bench_engine", "numba core vs the reference implementation")
    ring = _add_tool(bsub, "ring", "tools.bench_ring",
                     "our shared-memory ring vs multiprocessing.Queue and faster-fifo")
    ring.set_defaults(func=_reporting(ring.get_default("func"), "measuring the rings"))
    _add_tool(bsub, "pipeline", "tools.bench_pipeline", "ST vs MT pipeline on the same commands")
    _add_tool(bsub, "wal", "tools.bench_wal", "MT with the WAL synced every batch vs not synced")
    _add_tool(bsub, "gateway", "tools.bench_gateway", "signed orders at fixed offered rates against a real xinf serve")
    _add_tool(bsub, "push", "tools.bench_push", "WebSocket subscribers on one symbol while orders are placed")
    _add_tool(bsub, "latency", "tools.bench_latency",
              "open-loop latency per offered rate: the core path (no HTTP) and through the gateway")


def _add_pipeline(sub):
    p = sub.add_parser("pipeline", help="run a dataset through the core")
    psub = p.add_subparsers(dest="mode", required=True)
    _add_tool(psub, "st", "app.st", "single-process pipeline")
    _add_tool(psub, "mt", "app.mt", "multi-process pipeline (shared-memory rings)")


def _add_drill(sub):
    d = sub.add_parser("drill", help="crash-and-replay drills")
    dsub = d.add_subparsers(dest="what", required=True)
    _add_tool(dsub, "crash", "tools.drill", "SIGKILL pipeline processes at random moments; nothing may be lost")
    _add_tool(dsub, "serve", "tools.drill_serve", "SIGKILL processes of a live `xinf serve` under signed traffic")


def _add_run(sub):
    from xinfinity.app import mt
    _add_tool(sub, "serve", "app.serve", "run the exchange: HTTP gateway and pipeline, recovering the data dir")
    r = sub.add_parser("run", help="the bundled golden dataset through the multi-process pipeline")
    mt.add_run_arguments(r)
    r.set_defaults(func=mt.run)


def _add_client(sub):
    """order, balance, deposit, withdraw: the REST client (client/cli.py)."""
    from xinfinity.client import cli as client_cli
    client_cli.add_commands(sub)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="xinf", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    _add_run(sub)
    _add_pipeline(sub)
    from xinfinity.tools import recipes
    gen = _add_tool(sub, "gen-fixture", "tools.gen_fixture", "generate a deterministic dataset")
    gen.set_defaults(func=recipes.gen_fixture_main)     # gen_fixture.main with progress lines
    _add_tool(sub, "replay", "app.replay", "rebuild the state and output files from a WAL directory")
    from xinfinity.app import replay
    r = sub.add_parser("recover", help="the state from the newest good snapshot and the WAL after it")
    replay.add_recover_arguments(r)
    r.set_defaults(func=replay.recover_main)
    from xinfinity.app import mt
    s = sub.add_parser("snapshot", help="ask the MT pipeline running on a WAL for a snapshot now")
    mt.add_snapshot_arguments(s)
    s.set_defaults(func=mt.snapshot_main)
    _add_tool(sub, "parity", "tools.parity", "run ST and MT on a dataset and compare every output file")
    _add_tool(sub, "fixtures", "tools.recipes", "check or regenerate the large generated datasets")
    _add_tool(sub, "apikey", "accounts.cli", "create, list and revoke users' API keys (operator)")
    _add_tool(sub, "dashboard", "tools.dashboard", "live metrics of a running xinf serve or pipeline mt (--once: one frame)")
    _add_bench(sub)
    _add_drill(sub)
    _add_client(sub)
    args = ap.parse_args(argv)
    from xinfinity.config import ConfigError
    from xinfinity.storage.wal_dir import WalDirError
    from xinfinity.runtime.supervisor import PipelineError
    from xinfinity.app.serve import ServeError
    from xinfinity.storage.wal import WalError
    from xinfinity.edge.dataset import DatasetError
    from xinfinity.runtime import progress
    sub_dest = {"pipeline": "mode", "bench": "what", "drill": "what", "fixtures": "action"}.get(args.cmd)
    progress.set_command(" ".join([args.cmd] + ([getattr(args, sub_dest)] if sub_dest else [])))  # who reports
    try:
        return int(args.func(args) or 0)
    except DatasetError as e:
        print(f"xinf: bad input: {e}", file=sys.stderr)
        return 2
    except ConfigError as e:
        print(f"xinf: bad config: {e}", file=sys.stderr)
        return 2
    except (WalDirError, WalError) as e:
        print(f"xinf: WAL: {e}", file=sys.stderr)
        return 2
    except ServeError as e:
        print(f"xinf: serve: {e}", file=sys.stderr)
        return 2
    except PipelineError as e:
        print(f"xinf: pipeline failed: {e}", file=sys.stderr)
        return 1
    finally:
        progress.set_command(None)


if __name__ == "__main__":
    sys.exit(main())
