"""The queue of runs, kept in the workspace database so that every app and command on the
machine sees and edits the same one.

    queue = RunQueue(store)
    queue.add("demo", {"train": "texts.txt", "lr": 3e-4})   # then core.queue.runner.ensure_runner()
    queue.items()                                            # next first

An item is `waiting` until the runner takes it (`running`); when its run ends the item
leaves the queue and the run is in the workspace's runs. `pause()` lets the current run end
and starts no other until `resume()`.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass

from core.base.safe_write import process_alive
from core.store.database import Store, now_iso

PAUSED = "paused"


@dataclass
class QueueItem:
    id: int
    model: str
    config: dict                     # the run's settings and paths, as `train` takes them
    sweep: int | None
    name: str | None                 # what sets it apart in its sweep ("lr=1e-3")
    state: str                       # waiting | running | paused (waiting, the queue paused)
    run_id: int | None = None        # the workspace's run, once it started

    def as_json(self) -> dict:
        return {"id": self.id, "model": self.model, "config": self.config, "sweep": self.sweep,
                "name": self.name, "state": self.state, "run_id": self.run_id}


class RunQueue:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- what is queued ---------------------------------------------------------------------

    def add(self, model: str, config: dict, sweep: int | None = None, name: str | None = None) -> int:
        with self.store.lock:
            self.store.db.execute("BEGIN IMMEDIATE")
            try:
                last = self.store.db.execute("SELECT MAX(position) FROM queue").fetchone()[0]
                cursor = self.store.db.execute(
                    "INSERT INTO queue (position, added, model, config, sweep, name, state) "
                    "VALUES (?,?,?,?,?,?,?)",
                    ((last or 0) + 1, now_iso(), model, json.dumps(config, ensure_ascii=False),
                     sweep, name, "waiting"))
                self.store.db.execute("COMMIT")
            except BaseException:
                self.store.db.execute("ROLLBACK")
                raise
        return int(cursor.lastrowid or 0)

    def items(self) -> list[QueueItem]:
        """The queue, the running item first, then the waiting ones in the order they run."""
        paused = self.paused()
        rows = self.store.read("SELECT * FROM queue ORDER BY state = 'running' DESC, position")
        return [QueueItem(r["id"], r["model"], json.loads(r["config"]), r["sweep"], r["name"],
                          PAUSED if paused and r["state"] == "waiting" else r["state"], r["run_id"])
                for r in rows]

    def waiting(self) -> int:
        return self.store.read("SELECT COUNT(*) AS n FROM queue WHERE state = 'waiting'")[0]["n"]

    def remove(self, item_id: int) -> bool:
        """Take a waiting item out of the queue (a running one is stopped like any run)."""
        if not self.store.read("SELECT 1 FROM queue WHERE id = ? AND state = 'waiting'", (item_id,)):
            return False
        self.store.write([("DELETE FROM queue WHERE id = ?", (item_id,))])
        return True

    def move(self, item_id: int, by: int) -> bool:
        """Move a waiting item `by` places (negative: sooner) among the waiting ones."""
        rows = self.store.read("SELECT id, position FROM queue WHERE state = 'waiting' ORDER BY position")
        ids = [r["id"] for r in rows]
        if item_id not in ids:
            return False
        at = ids.index(item_id)
        to = max(0, min(len(ids) - 1, at + by))
        if to == at:
            return False
        ids.insert(to, ids.pop(at))
        positions = sorted(r["position"] for r in rows)
        self.store.write([("UPDATE queue SET position = ? WHERE id = ?", (pos, i))
                           for pos, i in zip(positions, ids)])
        return True

    def clear(self) -> int:
        """Every waiting item out of the queue; the running one goes on. How many went."""
        n = self.waiting()
        self.store.write([("DELETE FROM queue WHERE state = 'waiting'", ())])
        return n

    # -- pausing ---------------------------------------------------------------------------------

    def paused(self) -> bool:
        return bool(self.store.read("SELECT 1 FROM queue_flags WHERE name = ?", (PAUSED,)))

    def pause(self) -> None:
        self.store.write([("INSERT OR REPLACE INTO queue_flags VALUES (?, '1')", (PAUSED,))])

    def resume(self) -> None:
        self.store.write([("DELETE FROM queue_flags WHERE name = ?", (PAUSED,))])

    # -- the runner's side -------------------------------------------------------------------

    def take_next(self) -> QueueItem | None:
        """The next waiting item, marked running by this process — unless the queue is paused."""
        with self.store.lock:
            db = self.store.db
            db.execute("BEGIN IMMEDIATE")   # two runners never take the same item
            try:
                paused = db.execute("SELECT 1 FROM queue_flags WHERE name = ?", (PAUSED,)).fetchone()
                row = None if paused else db.execute(
                    "SELECT id FROM queue WHERE state = 'waiting' ORDER BY position LIMIT 1").fetchone()
                if row is not None:
                    db.execute("UPDATE queue SET state = 'running', pid = ?, host = ? WHERE id = ?",
                               (os.getpid(), socket.gethostname(), row[0]))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        if row is None:
            return None
        return next(item for item in self.items() if item.id == row[0])

    def started(self, item_id: int, run_id: int) -> None:
        self.store.write([("UPDATE queue SET run_id = ? WHERE id = ?", (run_id, item_id))])

    def finished(self, item_id: int) -> None:
        """The item's run ended (its record is in the runs): it leaves the queue."""
        self.store.write([("DELETE FROM queue WHERE id = ?", (item_id,))])

    def drop_orphans(self) -> None:
        """Items left `running` by a runner that is gone (killed): their runs read `killed`."""
        rows = self.store.read("SELECT id, pid, host FROM queue WHERE state = 'running'")
        gone = [r["id"] for r in rows
                if r["host"] == socket.gethostname() and not process_alive(r["pid"])]
        self.store.write([("DELETE FROM queue WHERE id = ?", (i,)) for i in gone])


# -- sweeps -------------------------------------------------------------------------------------

def new_sweep(store: Store, settings: dict[str, list]) -> int:
    """A sweep's record: which settings it varies, over which values."""
    with store.lock:
        cursor = store.db.execute("INSERT INTO sweeps (time, settings) VALUES (?, ?)",
                                  (now_iso(), json.dumps(settings, ensure_ascii=False)))
    return int(cursor.lastrowid or 0)


def sweep_settings(store: Store, sweep: int) -> dict[str, list] | None:
    rows = store.read("SELECT settings FROM sweeps WHERE id = ?", (sweep,))
    return json.loads(rows[0]["settings"]) if rows else None
