"""The store shared by separate processes, as gateway workers and the operator
CLI share it: a key's nonce mark taken from two processes at once accepts each
nonce at most once and only ever rises, and processes opening a fresh file at
the same moment agree on its schema and its users."""
import json
import random
import subprocess
import sys
import time

from xinfinity.accounts.store import AccountStore

# Each worker process says "ready", waits for the go file, then runs its part
# with its own store (opened before "ready" for the nonces, after "go" to race
# the schema's creation) and prints its result as one JSON line.
_WORKER = r"""
import json, os, random, sys, time
from xinfinity.accounts.store import AccountStore
task, db, go, arg, seed = sys.argv[1:]
store = AccountStore(db) if task == "nonces" else None
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.001)
if task == "nonces":
    # A walk through the shared candidates, mostly upwards, sometimes back:
    # the other worker walks the same range in its own steps.
    rng = random.Random(int(seed))
    attempts, n = [], 0
    while n < 1500:
        n += rng.randint(1, 3)
        back = rng.randint(0, 4) if rng.random() < 0.2 else 0
        attempts.append(n - back if n - back > 0 else n)
    print(json.dumps([[c, store.advance_nonce(arg, c)] for c in attempts]))
else:
    store = AccountStore(db)
    shared = store.get_or_create_user("shared")[0]
    print(json.dumps({"shared": shared, "own": store.create_user("own" + seed)}))
"""


def _run_workers(task: str, db, arg: str, seeds: list[int], go) -> list:
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, task, str(db), str(go), arg, str(seed)],
                              stdout=subprocess.PIPE, text=True) for seed in seeds]
    for p in procs:
        assert p.stdout.readline() == "ready\n"
    go.touch()
    results = []
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        results.append(json.loads(out))
    return results


def test_two_processes_accept_each_nonce_at_most_once_and_each_sees_them_rise(tmp_path):
    seed = random.randrange(1 << 30)
    print("seed", seed)
    db = tmp_path / "accounts.db"
    with AccountStore(db) as store:
        key = store.create_api_key(store.create_user("alice")).api_key
    t0 = time.perf_counter()
    results = _run_workers("nonces", db, key, [seed, seed + 1], tmp_path / "go")
    accepted = [[c for c, ok in attempts if ok] for attempts in results]
    for mine in accepted:
        # Once this process has had n accepted, nothing <= n is accepted again.
        assert all(a < b for a, b in zip(mine, mine[1:]))
    assert not set(accepted[0]) & set(accepted[1])
    # Refusals of nonces above a process's own mark came from the other's
    # raises: proof the two ran against each other, not one after the other.
    contended = [0, 0]
    for k, attempts in enumerate(results):
        own_mark = 0
        for c, ok in attempts:
            if ok:
                own_mark = c
            elif c > own_mark:
                contended[k] += 1
    print("accepted", [len(m) for m in accepted], "refused above own mark", contended,
          f"{time.perf_counter() - t0:.2f} s")
    assert sum(contended) > 0
    with AccountStore(db) as store:
        assert store.key(key).nonce == max(accepted[0] + accepted[1])


def test_processes_opening_a_fresh_file_at_once_share_its_schema_and_users(tmp_path):
    db = tmp_path / "accounts.db"
    results = _run_workers("users", db, "", [1, 2, 3], tmp_path / "go")
    assert len({r["shared"] for r in results}) == 1
    ids = [r["own"] for r in results] + [results[0]["shared"]]
    assert len(set(ids)) == 4 and min(ids) == 1000
    with AccountStore(db) as store:
        assert [store.user_id_of(f"own{k}") for k in (1, 2, 3)] == [r["own"] for r in results]
