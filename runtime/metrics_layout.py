"""What a pipeline's metrics segment holds: its histogram rows and its gauges, by name.

Kept apart from runtime/metrics.py (whose kernels are compiled and cached):
naming a new stage or gauge here recompiles nothing. docs/METRICS.md says
what each one measures.
"""
from __future__ import annotations

from ..engine import records as R

# Each gateway worker's rows at the edge (one writer each: the worker), in a command's order.
GATEWAY_ROWS = ("gateway.request", "gateway.precheck", "gateway.ring", "gateway.ack")
# Each gateway worker's WebSocket gauges (services/gateway.py sets them from its hub).
WS_GAUGES = ("ws.connections", "ws.subscriptions", "ws.drops", "ws.sent")


def gateways(topology) -> tuple[str, ...]:
    """The gateway workers of a pipeline (none in a dataset run)."""
    return tuple(s for s in topology.sources if topology.process(s).role == "gateway")


def rows_of(topology) -> tuple[str, ...]:
    """The histogram rows of a pipeline: what each stage measures (docs/METRICS.md)."""
    workers = gateways(topology)
    rows = [f"{stage}@{w}" for w in workers for stage in GATEWAY_ROWS]
    rows += ["ubscore", "match"]
    if "journal" in topology.names:
        rows += ["wal", "wal.fsync"]
    rows += ["settle"]
    if any(r.record == R.ACK for r in topology.rings):
        rows += ["store", "store.write"]
    if any(r.record == R.PUSH for r in topology.rings):
        rows += [f"push@{w}" for w in workers]
    return tuple(rows)


def gauges_of(topology) -> tuple[str, ...]:
    reasons = tuple(f"rejects.{code}" for code in sorted(R.REASON_TEXT) if code)
    return ("commands", "trades", *reasons, "stalls", "restarts", "store.lag",
            *(f"ring.{r.name}" for r in topology.rings), *(f"capacity.{r.name}" for r in topology.rings),
            *(f"proc.{p}.{f}" for p in topology.names for f in ("pid", "state", "heartbeat")),
            *(f"{g}@{w}" for w in gateways(topology) for g in WS_GAUGES))
