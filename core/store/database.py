"""The workspace database: every generation and every training run, across sessions.

SQLite in WAL mode with a busy timeout, so two app instances (and a CLI run beside them)
read and write at once without corrupting anything; the schema has a version and
migrations. A run's steps are committed in small batches as they happen, so a run killed
with -9 keeps everything up to its last second (and reads `killed`).

    store = Store.open()                      # core.store.workspace.database_path()
    run_id = store.start_run(model, config)   # then feed RunRecorder(store, run_id) the events
    store.runs(); store.history(search="кот")
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from core.base.errors import UserError, first_line
from core.base.safe_write import process_alive
from core.store.migrations import MIGRATIONS
from core.store.workspace import database_path

if TYPE_CHECKING:
    from core.training.config import TrainConfig

SCHEMA_VERSION = len(MIGRATIONS)
BUSY_TIMEOUT_MS = 10_000


def now_iso() -> str:
    return datetime.now(UTC).astimezone().isoformat(timespec="seconds")


def resolved(folder: str | Path) -> str:
    """A folder as runs record it: absolute, links resolved, so one folder has one name."""
    return str(Path(folder).expanduser().resolve())


def _alive(pid: int | None, host: str | None) -> bool:
    """Whether the process that wrote a run still runs (only knowable on this machine)."""
    if pid is None or host != socket.gethostname():
        return True
    return process_alive(pid)


class Store:
    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self.db = connection
        self.path = path
        self.lock = threading.Lock()   # one connection, used from the UI and worker threads

    @classmethod
    def open(cls, path: Path | None = None) -> Store:
        """Open (creating or migrating) the database; a one-line UserError when it cannot
        be used — the file is left as it is."""
        path = path or database_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                 check_same_thread=False)
            db.create_function("contains", 2, lambda text, needle: needle in (text or "").casefold(),
                               deterministic=True)
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")   # WAL: a killed process loses nothing committed
            store = cls(db, path)
            store._migrate()
        except sqlite3.Error as exc:
            raise UserError(f"{path}: cannot use the workspace database ({first_line(exc)})") from None
        except OSError as exc:
            raise UserError(f"{path}: cannot use the workspace database ({first_line(exc)})") from None
        return store

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise UserError(f"{self.path}: written by a newer rugpt-tui (schema {version}, "
                            f"this one knows {SCHEMA_VERSION}); history and runs are off")
        if version == SCHEMA_VERSION:
            return
        self.db.execute("BEGIN IMMEDIATE")   # a second instance waits, then sees it done
        try:
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            for step in MIGRATIONS[version:]:
                for statement in step:
                    self.db.execute(statement)
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        with self.lock:
            self.db.close()

    def write(self, statements: list[tuple[str, tuple]]) -> None:
        """Several statements in one transaction (one fsync-free WAL commit)."""
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for sql, args in statements:
                    self.db.execute(sql, args)
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    def read(self, sql: str, args: tuple = ()) -> list[dict]:
        with self.lock:
            cursor = self.db.execute(sql, args)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    # -- models scored on held-out data ------------------------------------------------------

    def add_score(self, model: str, data: str, data_hash: str | None, block_size: int,
                  loss: float, tokens: int, seconds: float) -> None:
        self.write([("INSERT INTO model_scores (time, model, data, data_hash, block_size, loss, "
                      "tokens, seconds) VALUES (?,?,?,?,?,?,?,?)",
                      (now_iso(), model, data, data_hash, block_size, loss, tokens, seconds))])

    def scores(self, data_hash: str | None = None) -> list[dict]:
        """Scores kept, newest first; with `data_hash`, those on that data only."""
        where, args = ("WHERE data_hash = ?", (data_hash,)) if data_hash else ("", ())
        return self.read(f"SELECT * FROM model_scores {where} ORDER BY id DESC", args)

    # -- generations ------------------------------------------------------------------------

    def add_generation(self, model: str, prompt: str, text: str, seed: int | None,
                       settings: dict, new_tokens: int, tokens_per_s: float,
                       stop_reason: str) -> None:
        self.write([("INSERT INTO generations (time, model, prompt, text, seed, settings, "
                      "new_tokens, tokens_per_s, stop_reason) VALUES (?,?,?,?,?,?,?,?,?)",
                      (now_iso(), model, prompt, text, seed, json.dumps(settings, ensure_ascii=False),
                       new_tokens, tokens_per_s, stop_reason))])

    def history(self, search: str | None = None, limit: int = 1000) -> list[dict]:
        """Generations, newest first; `search` matches the prompt or the text, in any case
        (Cyrillic too: SQLite's own LIKE folds ASCII only)."""
        sql = "SELECT * FROM generations"
        args: tuple[str, ...] = ()
        if search:
            sql += " WHERE contains(prompt, ?) OR contains(text, ?)"
            args = (search.casefold(),) * 2
        rows = self.read(sql + " ORDER BY id DESC LIMIT ?", (*args, limit))
        for row in rows:
            row["settings"] = json.loads(row["settings"])
        return rows

    # -- training runs --------------------------------------------------------------------

    def start_run(self, model: str, config: TrainConfig, data_hash: str | None = None,
                  sweep: int | None = None) -> int:
        with self.lock:
            cursor = self.db.execute(
                "INSERT INTO runs (time, model, train, data_hash, config, status, pid, host, sweep) "
                "VALUES (?,?,?,?,?,?,?,?,?)",
                (now_iso(), model, config.train, data_hash, json.dumps(asdict(config), ensure_ascii=False),
                 "running", os.getpid(), socket.gethostname(), sweep))
            return int(cursor.lastrowid or 0)   # an INSERT always sets it

    def set_data_hash(self, run_id: int, data_hash: str) -> None:
        self.write([("UPDATE runs SET data_hash = ? WHERE id = ?", (data_hash, run_id))])

    def run(self, run_id: int) -> dict | None:
        """One run's whole row, its settings (`config`, JSON) included."""
        rows = self.read("SELECT * FROM runs WHERE id = ?", (run_id,))
        return rows[0] if rows else None

    def runs(self, limit: int = 500) -> list[dict]:
        """Runs, newest first. A run whose process died without saying how it ended (killed,
        power cut) reads `killed`."""
        rows = self.read("SELECT id, time, model, train, data_hash, steps, total_steps, eval_loss, "
                          "status, out, error, pid, host, ended, seen, replaced_by, sweep FROM runs "
                          "ORDER BY id DESC LIMIT ?", (limit,))
        for row in rows:
            if row["status"] == "running" and not _alive(row["pid"], row["host"]):
                row["status"] = "killed"
        return rows

    def curves(self, run_id: int) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
        """(step, train loss) and (step, eval loss) of a run."""
        with self.lock:
            steps = self.db.execute("SELECT step, loss FROM run_steps WHERE run_id = ? ORDER BY step",
                                    (run_id,)).fetchall()
            evals = self.db.execute("SELECT step, eval_loss FROM run_evals WHERE run_id = ? "
                                    "ORDER BY step", (run_id,)).fetchall()
        return [tuple(r) for r in steps], [tuple(r) for r in evals]

    def step_rows(self, run_id: int) -> list[dict]:
        """A run's steps whole: step, loss, lr, tokens_per_s, epoch, tokens."""
        return self.read("SELECT step, loss, lr, tokens_per_s, epoch, tokens FROM run_steps "
                          "WHERE run_id = ? ORDER BY step", (run_id,))

    def hardware(self, run_id: int) -> list[tuple[int, dict]]:
        """The hardware samples taken at a run's evaluations: (step, core.base.hardware.Reading
        as JSON)."""
        return [(r["step"], json.loads(r["sample"])) for r in self.read(
            "SELECT step, sample FROM run_hardware WHERE run_id = ? ORDER BY rowid", (run_id,))]

    def peak_memory(self, run_id: int) -> int | None:
        """The most memory a run's samples saw it hold: its GPUs' memory in use, else its
        process's resident set; None when none was taken."""
        from core.base.hardware import memory_held

        peaks = [memory_held(sample) for _, sample in self.hardware(run_id)]
        return max(peaks) if peaks else None

    def best_eval(self, run_id: int) -> float | None:
        return self.read("SELECT MIN(eval_loss) AS best FROM run_evals WHERE run_id = ?",
                          (run_id,))[0]["best"]

    def step_tokens(self, run_id: int) -> dict[int, int]:
        """Tokens trained by the end of each step (runs recorded before they were kept: none)."""
        rows = self.read("SELECT step, tokens FROM run_steps WHERE run_id = ? AND tokens IS NOT NULL",
                          (run_id,))
        return {row["step"]: row["tokens"] for row in rows}

    def samples(self, run_id: int) -> list[tuple[int, str]]:
        with self.lock:
            return [tuple(r) for r in self.db.execute(
                "SELECT step, text FROM run_samples WHERE run_id = ? ORDER BY rowid", (run_id,))]

    def evals(self, run_id: int) -> list[tuple[int, float, float]]:
        with self.lock:
            return [tuple(r) for r in self.db.execute(
                "SELECT step, eval_loss, perplexity FROM run_evals WHERE run_id = ? ORDER BY step",
                (run_id,))]

    def mark_seen(self, run_ids: list[int]) -> None:
        """These runs' ends were seen (watched, or announced): not announced again."""
        self.write([("UPDATE runs SET seen = 1 WHERE id = ?", (rid,)) for rid in run_ids])

    def unseen_ends(self) -> list[dict]:
        """Runs of other processes that ended while nobody watched, oldest first."""
        return [r for r in reversed(self.runs(limit=200))
                if not r["seen"] and r["ended"] and r["pid"] != os.getpid()]

    def model_in(self, folder: str | Path) -> dict | None:
        """The run whose saved model `folder` holds (the last run that saved there), or None."""
        rows = self.read("SELECT id, eval_loss, status, steps FROM runs WHERE out = ? "
                          "ORDER BY id DESC LIMIT 1", (resolved(folder),))
        return rows[0] if rows else None

    def discard_run(self, run_id: int) -> None:
        """Forget a run that never started (its data was refused before the first step)."""
        self.write([(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
                     for table in ("run_steps", "run_evals", "run_samples", "run_notes")]
                    + [("DELETE FROM runs WHERE id = ?", (run_id,))])

    def end_run(self, run_id: int, status: str, error: str | None = None) -> None:
        """A run that ended without a Done event (it failed before or during training)."""
        self.write([("UPDATE runs SET status = ?, error = ?, ended = ? WHERE id = ?",
                      (status, error, now_iso(), run_id))])
