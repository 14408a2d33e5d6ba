"""The audit stage: follows the order WAL on disk and writes every event of
the durable history to the audit store (storage/audit/), never holding the core up.

It reads the WAL file as the journal appends to it (nothing of the core waits
for it: no ring, no back-pressure) and replays the commands through a core of
its own, the ST core that recovery replays through (storage/recovery.py): the
WAL holds commands only, and the events of a command are a function of the
commands before it (DESIGN.md section 2), so they are settlement's events,
in the same order, with the same balance-after values.

Restart: the store's mark says how far it holds the events; the core is
restored from the newest intact snapshot at or below the mark (none: from
the WAL's start) and the WAL replayed from there, the events at or below the
mark skipped. A crash anywhere (mid-transaction included) loses nothing and
writes nothing twice: a batch's rows and its mark are committed together.

K-lines: the candles the replayed trades close, computed by the live market
data's own code (marketdata.book.MarketData, `ClosedCandles`), are written
with the batch of the trade that closed them; the open candle is not (the
live market data has it).

What the store holds was durable in the WAL: before a batch is written the
stage syncs the WAL file (a no-op under fsync every_batch), so a power loss
that takes the WAL's unsynced tail cannot leave the store ahead of it.

Its lag (the WAL's last complete record's seq minus the store's mark) is
`AuditStage.lag()`; it goes with the mark to DATA/audit.json (`status`)
every persistence.audit_status_ms while the stage steps, and at once when it
reaches or leaves 0: a dashboard reads that file.

Layout: DATA/wal/ (the WAL directory, storage/wal_dir.py), DATA/audit.db
(SQLite) unless persistence.tdengine_dsn names a TDengine, DATA/audit.json.
"""
from __future__ import annotations

import json
import os
import pathlib
import time
from typing import Callable

import numpy as np

from ..config import Config
from ..engine import records as R
from ..engine.core import Core
from ..engine.events import Events, concat
from ..engine.ubscore import UBS_LAST_SEQ
from ..engine.wal import RECORD_BYTES, WAL_RECORD, commands_of, wal_count_intact, wal_intact, wal_verify
from ..marketdata.book import NS_PER_MS, MarketData
from ..marketdata.tape import DAY_MS
from ..marketdata.types import Kline
from ..storage.audit import AuditBatch, AuditStore, open_audit_store
from ..storage.order_store import TradeRow
from ..storage.snapshot import load_snapshot
from ..storage.wal import WalCorrupt
from ..storage.wal_dir import SNAPSHOTS, WAL_FILE, read_market

STATUS_FILE = "audit.json"
SUSPECT_S = 1.0         # a bad record with intact ones after it, unchanged this long, is corruption


class WalFollower:
    """Reads a WAL while another process appends to it, changing nothing: the
    complete records that pass their check, in seq order. A record not yet
    complete or intact (a write in flight, a torn tail) waits. One that stays
    bad, byte for byte, for SUSPECT_S while intact records follow it is
    corruption: WalCorrupt names its offset, as opening the WAL would."""

    def __init__(self, path: pathlib.Path, next_seq: int):
        self.path, self.next_seq = path, next_seq
        self.fd = os.open(path, os.O_RDONLY)
        self.suspect: tuple[int, bytes, float] | None = None

    def last_seq(self) -> int:
        """The seq of the last complete record in the file (records hold seqs 1, 2, ...)."""
        return os.fstat(self.fd).st_size // RECORD_BYTES

    def read(self, limit: int) -> np.ndarray:
        """The next intact records' commands (R.CMD), at most `limit`."""
        offset = (self.next_seq - 1) * RECORD_BYTES
        n = min(limit, self.last_seq() - (self.next_seq - 1))
        if n <= 0:
            return np.zeros(0, R.CMD)
        buf = np.empty(n * RECORD_BYTES, np.uint8)
        n = os.preadv(self.fd, [buf], offset) // RECORD_BYTES      # fewer if cut since (recovery)
        recs = buf[:n * RECORD_BYTES].view(WAL_RECORD)
        words = R.words(recs)
        good = int(wal_verify(recs, words, n, self.next_seq))
        if good < n:
            self._bad(recs, words, good, n, offset + good * RECORD_BYTES)
        else:
            self.suspect = None
        self.next_seq += good
        return commands_of(recs[:good])

    def _bad(self, recs, words, i: int, n: int, offset: int) -> None:
        good = int(wal_count_intact(words, i + 1, n))
        if good:
            body = recs[i:i + 1].tobytes()
            now = time.monotonic()
            if self.suspect is None or self.suspect[:2] != (offset, body):
                self.suspect = (offset, body, now)
            elif now - self.suspect[2] >= SUSPECT_S:
                r = recs[i]
                why = ("checksum mismatch" if not wal_intact(words, i)
                       else f"seq {int(r['seq'])} where {self.next_seq + i} was expected")
                raise WalCorrupt(self.path, offset, f"{why}; {good} intact record(s) follow")
        else:
            self.suspect = None

    def command(self, seq: int) -> np.ndarray:
        """The command of a record already read (seq < next_seq), checked again."""
        assert 0 < seq < self.next_seq, f"seq {seq} is not read yet"
        rec = np.empty(1, WAL_RECORD)
        os.preadv(self.fd, [rec.view(np.uint8)], (seq - 1) * RECORD_BYTES)
        if wal_verify(rec, R.words(rec), 1, seq) != 1:
            raise WalCorrupt(self.path, (seq - 1) * RECORD_BYTES, f"seq {seq}'s record no longer passes its check")
        return commands_of(rec)[0]

    def sync(self) -> None:
        """Make the records read so far durable (fdatasync: the journal's own policy may not have yet)."""
        os.fdatasync(self.fd)

    def close(self) -> None:
        os.close(self.fd)


class ClosedCandles:
    """The K-line candles that replayed trades close, by the live market data's
    own rules (marketdata.book.MarketData, fed the trades alone: no depth here).
    Restarted at a snapshot of seq S, its tapes are first loaded with the
    store's trades of seqs up to S from the start of the day before seq S's
    entry: every interval divides a day, so the candle of every interval open
    at S is whole again (for gateway clocks less than a day apart), and a
    candle closed before the restart closes again the same. That reads up to
    two days of trades at a start."""

    def __init__(self, symbols, store: AuditStore, seq: int, entry_ns: int):
        self.md = MarketData(symbols)
        if not seq:
            return
        start_ms = entry_ns // NS_PER_MS
        start_ms -= start_ms % DAY_MS + DAY_MS
        rows = []
        for s in symbols:
            got = store.trades(s.id, start_ms=start_ms, limit=1 << 62)
            for (tid, tseq, price, qty, quote, b_oid, s_oid, b_uid, s_uid, b_fee, s_fee, symbol, taker_side,
                 _r), ts in zip(got.events.tolist(), got.ts_ns.tolist()):
                if tseq <= seq:
                    taker = int(taker_side == R.SIDE_BUY)
                    rows += [TradeRow(tid, R.SIDE_BUY, b_oid, b_uid, symbol, price, qty, quote, b_fee, 0, taker, ts,
                                      tseq),
                             TradeRow(tid, R.SIDE_SELL, s_oid, s_uid, symbol, price, qty, quote, s_fee, 0, 1 - taker,
                                      ts, tseq)]
        self.md.load(seq, [], rows)

    def __call__(self, trades: np.ndarray, cmds: np.ndarray) -> list[Kline]:
        """The candles closed by these trades (R.TRADE_EVENT) of the commands `cmds`."""
        update = self.md.apply(np.zeros(0, R.ORDER_EVENT), trades, dict(zip(cmds["seq"].tolist(),
                                                                            cmds["ts"].tolist())))
        return [k for k in update.klines if k.closed]


class AuditStage:
    """Runs step by step (`step`), so a test or a supervised process drives it."""

    def __init__(self, data_dir, cfg: Config, store: AuditStore | None = None):
        """store: the audit store (default: the config's, open_audit_store)."""
        self.data_dir = pathlib.Path(data_dir)
        wal_dir = self.data_dir / "wal"
        p = cfg.persistence
        self.batch, self.status_every_ns = p.audit_batch, p.audit_status_ms * 1_000_000
        assets, symbols, dust, capacity, _ = read_market(wal_dir)
        self.store = store if store is not None else open_audit_store(cfg, self.data_dir)
        self.mark = self.store.mark()
        held = (wal_dir / WAL_FILE).stat().st_size // RECORD_BYTES
        if held < self.mark:
            raise RuntimeError(f"{self.data_dir}: the audit store holds events through seq {self.mark} but the WAL "
                               f"only {held} commands: the store is not this WAL's")
        self.core = Core(assets, symbols, R.DUST_CODES[dust], capacity, prefault=False)
        self.snapshot_seq, arrays, self.rejected = load_snapshot(wal_dir / SNAPSHOTS, self.mark, tidy=False)
        if arrays is not None:
            self.core.restore(arrays)
        self.follower = WalFollower(wal_dir / WAL_FILE, self.snapshot_seq + 1)
        at = self.snapshot_seq
        self.candles = ClosedCandles(symbols, self.store, at, int(self.follower.command(at)["ts"]) if at else 0)
        self.rows = 0                   # rows written since start
        self.reported_ns, self.reported_lag = 0, -1
        self.report(force=True)

    def step(self) -> int:
        """Replay the next commands the WAL holds (at most persistence.audit_batch)
        and write their events above the mark in one batch; returns how many were replayed."""
        cmds = self.follower.read(self.batch)
        if len(cmds):
            first, through = int(cmds["seq"][0]), int(cmds["seq"][-1])
            kept: list[Events] = []
            self.core.run(cmds, lambda ev: kept.append(Events(*(a.copy() for a in ev))))
            if self.core.ubs.counters[UBS_LAST_SEQ] != through:
                raise RuntimeError(f"audit replica at seq {int(self.core.ubs.counters[UBS_LAST_SEQ])} after "
                                   f"replaying the WAL through {through}")
            ev = concat(kept)
            closed = self.candles(ev.trades, cmds)        # also below the mark: the candles open at it need them
            if through > self.mark:
                self.follower.sync()
                self.rows += self.store.write(AuditBatch(first, through, cmds["ts"].astype(np.int64), ev.orders,
                                                         ev.trades, ev.balances, closed))
                self.mark = through
        self.report()
        return len(cmds)

    def caught_up(self) -> None:
        """Step until the WAL holds nothing more (tests, tools)."""
        while self.step():
            pass

    def lag(self) -> int:
        """Commands the WAL holds that the store does not have yet."""
        return max(0, self.follower.last_seq() - self.mark)

    def status(self) -> dict:
        last = self.follower.last_seq()
        return {"backend": self.store.backend, "mark": self.mark, "wal_last_seq": last,
                "lag": max(0, last - self.mark), "replayed_seq": self.follower.next_seq - 1,
                "rows_written": self.rows, "snapshot_seq": self.snapshot_seq, "pid": os.getpid(),
                "updated_ms": time.time_ns() // 1_000_000}

    def report(self, force: bool = False) -> None:
        """Write the status to DATA/audit.json (atomically) when forced, due, or the lag reached or left 0."""
        now = time.monotonic_ns()
        lag = self.lag()
        if not force and now - self.reported_ns < self.status_every_ns and (lag == 0) == (self.reported_lag == 0):
            return
        path = self.data_dir / STATUS_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.status()) + "\n")
        os.replace(tmp, path)
        self.reported_ns, self.reported_lag = now, lag

    def close(self) -> None:
        self.follower.close()
        self.store.close()


class AuditProcess:
    """The stage as a process of the supervisor (runtime/supervisor.py `_serve`:
    `step() -> bool`, `done`, `finish()`): it sleeps persistence.audit_poll_ms
    when the WAL holds nothing new, and is done once `finished()` (the journal
    has ended) and the store holds the whole WAL."""

    def __init__(self, stage: AuditStage, finished: Callable[[], bool], poll_ms: int, metrics=None):
        """metrics: runtime/metrics.Metrics to keep the store's lag in (gauge store.lag)."""
        self.stage, self.finished, self.poll_s, self.metrics = stage, finished, poll_ms / 1000, metrics
        self.done = False

    def step(self) -> bool:
        worked = self.stage.step()
        lag = self.stage.lag()
        if self.metrics is not None:
            self.metrics.set("store.lag", lag)
        if worked:
            return True
        if self.finished() and lag == 0:
            self.done = True
        else:
            time.sleep(self.poll_s)
        return False

    def finish(self) -> None:
        self.stage.report(force=True)
        self.stage.close()


def run_audit(data_dir, cfg: Config, stop: Callable[[], bool]) -> dict:
    """Run the stage on a data dir (a process of its own) until stop() and the
    store holds the whole WAL; returns its last status."""
    proc = AuditProcess(AuditStage(data_dir, cfg), stop, cfg.persistence.audit_poll_ms)
    try:
        while not proc.done:
            proc.step()
        return proc.stage.status()
    finally:
        proc.finish()
