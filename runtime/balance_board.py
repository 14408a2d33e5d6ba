"""The balance board: every user's balances in shared memory, for the gateways' pre-check.

Settlement writes it (from its replica, so it holds durable commands only),
after the order store commit of each step; gateway workers read it to turn
away, before it reaches the core, an order that obviously cannot be funded.
It is a filter, not a decision: UBSCore decides, and its balances are never
higher than the board's by more than fills still in flight, which only add.

Layout (one segment): a header word (rows in use), then `users` (user id of
each row, written before the row count is raised), then (avail, frozen) per
row and asset. A reader maps user ids to rows itself, scanning the rows
added since it last looked; 8-byte aligned stores are atomic on the
machines this runs on, so a reader sees each value before or after a write.
"""
from __future__ import annotations

from multiprocessing import shared_memory

import numpy as np

from ..ipc import shm


class BalanceBoard:
    def __init__(self, mem: shared_memory.SharedMemory, max_users: int, n_assets: int, owner: bool):
        self.mem, self.owner = mem, owner
        self.max_users, self.n_assets = max_users, n_assets
        buf = mem.buf
        self.n = np.ndarray(1, np.int64, buf, 0)
        self.users = np.ndarray(max_users, np.int64, buf, 8)
        self.cells = np.ndarray((max_users, n_assets, 2), np.int64, buf, 8 + 8 * max_users)
        self.rows: dict[int, int] = {}

    @classmethod
    def create(cls, instance: str, max_users: int, n_assets: int) -> "BalanceBoard":
        size = 8 + 8 * max_users + 16 * max_users * n_assets
        mem = shared_memory.SharedMemory(shm.part_name(instance, "balances"), create=True, size=size)
        return cls(mem, max_users, n_assets, owner=True)

    # -- writer (settlement) ------------------------------------------------------

    def load(self, user_ids: np.ndarray, balances: np.ndarray, n_users: int) -> None:
        """Fill it from a state (a recovered replica): rows are its user slots."""
        n = min(n_users, self.max_users)
        self.users[:n] = user_ids[:n]
        self.cells[:n, :, 0] = balances["avail"][:n, :self.n_assets]
        self.cells[:n, :, 1] = balances["frozen"][:n, :self.n_assets]
        self.rows = {int(u): i for i, u in enumerate(user_ids[:n].tolist())}
        self.n[0] = n

    def update(self, balance_events: np.ndarray) -> None:
        """The balances after these events (R.BALANCE_EVENT, in order)."""
        for user, asset, avail, frozen in zip(balance_events["user_id"].tolist(), balance_events["asset"].tolist(),
                                              balance_events["avail"].tolist(), balance_events["frozen"].tolist()):
            row = self.rows.get(user)
            if row is None:
                row = len(self.rows)
                if row >= self.max_users or asset >= self.n_assets:
                    continue
                self.users[row] = user
                self.rows[user] = row
                self.n[0] = row + 1
            self.cells[row, asset, 0] = avail
            self.cells[row, asset, 1] = frozen

    # -- readers (gateways) ----------------------------------------------------------

    def avail(self, user_id: int, asset: int) -> int:
        """The user's available balance of the asset, as far as the board knows (0: none)."""
        row = self.rows.get(user_id)
        if row is None or self.users[row] != user_id:
            n = int(self.n[0])
            for i in range(len(self.rows), n):
                self.rows[int(self.users[i])] = i
            row = self.rows.get(user_id)
            if row is None or asset >= self.n_assets:
                return 0
        return int(self.cells[row, asset, 0])

    def close(self) -> None:
        del self.n, self.users, self.cells
        self.mem.close()
        if self.owner:
            self.mem.unlink()
