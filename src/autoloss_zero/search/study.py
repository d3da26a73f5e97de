"""Study storage: one SQLite file per search (WAL), JSON only, never pickles.

The file carries ``PRAGMA application_id`` and a schema version (``user_version``);
both are checked, and the file is checked for corruption, before anything is written:
a foreign or corrupt file is never modified. One writer at a time holds an OS lock
(``flock``) that dies with its process; readers open the file read-only and work while
a search runs.

Every candidate seen is one row: its formula, normal form, fingerprint, status
(:class:`~.status.Status`, stored as its string value), scores, timings, parent,
mutation and evaluation seed. The rows of one evolution step (its rejected tries and
the candidate that passed) are written in one transaction, and every result in its
own, so ``kill -9`` loses at most the evaluations in flight, which are stored as
``running`` with their seed and re-run on resume.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import sqlite3
import stat
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import StudyError
from ..paths import sqlite_uri
from .status import STARTED, Status
from .validate import check_content

APPLICATION_ID = 0x414C5A30  # "ALZ0"
SCHEMA_VERSION = 2
"""2 (2026-12): the ``evaluations`` table (fidelity rungs, confirmation); version-1 files
are upgraded in place by the first writer, and read as they are."""
_HEADER = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE candidates (
    id INTEGER PRIMARY KEY,
    step INTEGER NOT NULL,
    formula TEXT NOT NULL,
    normal TEXT NOT NULL,
    fingerprint TEXT,
    status TEXT NOT NULL,
    reason TEXT,
    g REAL,
    score REAL,
    metrics TEXT,
    parent INTEGER,
    mutation TEXT,
    seed INTEGER,
    duplicate_of INTEGER,
    joined INTEGER,
    screen_s REAL,
    train_s REAL,
    created REAL NOT NULL,
    finished REAL,
    worker TEXT
);
CREATE INDEX candidates_status ON candidates(status);
CREATE INDEX candidates_score ON candidates(score);
""" + """
CREATE TABLE evaluations (
    id INTEGER PRIMARY KEY,
    candidate INTEGER NOT NULL,
    kind TEXT NOT NULL,
    rung INTEGER NOT NULL,
    schedule TEXT NOT NULL,
    split TEXT NOT NULL,
    seed INTEGER NOT NULL,
    cost REAL NOT NULL,
    status TEXT NOT NULL,
    score REAL,
    metrics TEXT,
    reason TEXT,
    train_s REAL,
    created REAL NOT NULL,
    finished REAL,
    worker TEXT
);
CREATE INDEX evaluations_candidate ON evaluations(candidate);
"""
_V2 = _SCHEMA[_SCHEMA.index("CREATE TABLE evaluations"):]

EVAL_COLUMNS = ("id", "candidate", "kind", "rung", "schedule", "split", "seed", "cost",
                "status", "score", "metrics", "reason", "train_s", "created", "finished",
                "worker")

COLUMNS = ("id", "step", "formula", "normal", "fingerprint", "status", "reason", "g", "score",
           "metrics", "parent", "mutation", "seed", "duplicate_of", "joined", "screen_s",
           "train_s", "created", "finished", "worker")


@dataclass
class Candidate:
    """One row of the ``candidates`` table."""

    id: int
    step: int
    formula: str
    normal: str
    status: Status
    fingerprint: str | None = None
    reason: str | None = None
    g: float | None = None
    score: float | None = None
    metrics: dict | None = None
    parent: int | None = None
    mutation: str | None = None
    seed: int | None = None
    duplicate_of: int | None = None
    joined: int | None = None
    screen_s: float | None = None
    train_s: float | None = None
    created: float = field(default_factory=time.time)
    finished: float | None = None
    worker: str | None = None
    evaluations: int | None = None
    """Not stored: on leaderboard rows, how many proxy trainings the score averages."""
    confirmed: float | None = None
    """Not stored: on leaderboard rows, the mean full-schedule validation score, if any."""
    confirmed_seeds: int = 0

    def values(self) -> tuple:
        d = self.__dict__.copy()
        d["metrics"] = None if self.metrics is None else json.dumps(self.metrics, sort_keys=True)
        return tuple(d[c] for c in COLUMNS)

    @classmethod
    def from_row(cls, row: tuple) -> Candidate:
        d = dict(zip(COLUMNS, row))
        d["metrics"] = None if d["metrics"] is None else json.loads(d["metrics"])
        d["status"] = Status(d["status"])
        return cls(**d)


@dataclass
class Evaluation:
    """One row of the ``evaluations`` table: a training of a loss beyond its first proxy
    training (``kind``: ``rung`` for a fidelity promotion, ``confirm`` for a
    confirmation). ``candidate`` is the group's root candidate; ``cost`` is in
    proxy-training equivalents."""

    id: int
    candidate: int
    kind: str
    rung: int
    schedule: str
    split: str
    seed: int
    cost: float
    status: Status
    score: float | None = None
    metrics: dict | None = None
    reason: str | None = None
    train_s: float | None = None
    created: float = field(default_factory=time.time)
    finished: float | None = None
    worker: str | None = None

    def values(self) -> tuple:
        d = self.__dict__.copy()
        d["metrics"] = None if self.metrics is None else json.dumps(self.metrics, sort_keys=True)
        return tuple(d[c] for c in EVAL_COLUMNS)

    @classmethod
    def from_row(cls, row: tuple) -> Evaluation:
        d = dict(zip(EVAL_COLUMNS, row))
        d["metrics"] = None if d["metrics"] is None else json.loads(d["metrics"])
        d["status"] = Status(d["status"])
        return cls(**d)


def check_file(path: Path) -> bool:
    """Return True if ``path`` is an existing study, False if it is absent or empty.

    Raises :class:`StudyError` for anything else, without writing to the file.
    """
    if not path.exists():
        return False
    if path.is_dir():
        raise StudyError(f"{path} is a directory, not a study file")
    if not stat.S_ISREG(path.stat().st_mode):  # /dev/null, a FIFO, a socket...
        raise StudyError(f"{path} is not a regular file, not a study file; left untouched")
    size = path.stat().st_size
    if size == 0:
        return False
    with open(path, "rb") as f:
        head = f.read(100)
    if len(head) < 100 or not head.startswith(_HEADER):
        raise StudyError(
            f"{path} is not an autoloss-zero study (not a SQLite file); left untouched"
        )
    app_id = int.from_bytes(head[68:72], "big")
    if app_id != APPLICATION_ID:
        raise StudyError(
            f"{path} is a SQLite file of another application (application_id {app_id:#x}); "
            "left untouched"
        )
    try:
        con = sqlite3.connect(sqlite_uri(path, mode="ro"), uri=True)
        try:
            ok = con.execute("PRAGMA quick_check").fetchone()[0]
            version = con.execute("PRAGMA user_version").fetchone()[0]
            if ok == "ok" and version <= SCHEMA_VERSION:
                check_content(con, path)  # before anything reads it as trusted or writes
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise StudyError(f"{path} is a corrupt study file ({exc}); left untouched") from None
    if ok != "ok":
        raise StudyError(f"{path} is a corrupt study file ({ok}); left untouched")
    if version > SCHEMA_VERSION:
        raise StudyError(
            f"{path} has schema version {version}, newer than this autoloss-zero "
            f"({SCHEMA_VERSION}); upgrade autoloss-zero"
        )
    return True


class StudyReader:
    """Read-only access; works while a search writes the same file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not check_file(self.path):
            raise StudyError(f"no study at {self.path}")
        self.con = sqlite3.connect(sqlite_uri(self.path, mode="ro"), uri=True, timeout=30)

    def close(self) -> None:
        self.con.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- queries -------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self.con.execute("SELECT key, value FROM meta")}

    def candidates(self, where: str = "", args: Iterable = ()) -> list[Candidate]:
        sql = f"SELECT {', '.join(COLUMNS)} FROM candidates {where} ORDER BY id"
        return [Candidate.from_row(r) for r in self.con.execute(sql, tuple(args))]

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(Status, 0)
        for status, n in self.con.execute("SELECT status, COUNT(*) FROM candidates GROUP BY 1"):
            out[status] = n
        return out

    def started(self) -> int:
        q = f"SELECT COUNT(*) FROM candidates WHERE status IN ({','.join('?' * len(STARTED))})"
        return self.con.execute(q, STARTED).fetchone()[0]

    def has_evaluations_table(self) -> bool:
        return self.con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                "name = 'evaluations'").fetchone() is not None

    def evaluations(self, where: str = "", args: Iterable = ()) -> list[Evaluation]:
        if not self.has_evaluations_table():
            return []
        sql = f"SELECT {', '.join(EVAL_COLUMNS)} FROM evaluations {where} ORDER BY id"
        return [Evaluation.from_row(r) for r in self.con.execute(sql, tuple(args))]

    def spent(self) -> float:
        """Compute spent, in proxy-training equivalents: every training started (first
        proxy trainings count 1 each, promotions and confirmations their cost)."""
        extra = 0.0
        if self.has_evaluations_table():
            extra = self.con.execute(
                "SELECT COALESCE(SUM(cost), 0) FROM evaluations WHERE kind = 'rung'"
            ).fetchone()[0]
        return self.started() + float(extra)

    def leaderboard(self, limit: int | None = None) -> list[Candidate]:
        """The ranking every reader uses (``show``, ``export``, ``load_loss``, ``compare
        study:``): losses confirmed by full-schedule trainings on the validation split
        first, by their mean (``confirmed``), then the others by their proxy score."""
        board = self.proxy_leaderboard()
        full: dict[int, list[float]] = {}
        for e in self.evaluations("WHERE schedule = 'full' AND status = ? "
                                  "AND score IS NOT NULL", [Status.EVALUATED]):
            full.setdefault(e.candidate, []).append(e.score)
        proxy_extra: dict[int, list[float]] = {}
        for e in self.evaluations("WHERE schedule = 'proxy' AND status = ? "
                                  "AND score IS NOT NULL", [Status.EVALUATED]):
            proxy_extra.setdefault(e.candidate, []).append(e.score)
        for c in board:
            more = proxy_extra.get(c.id, [])
            if more:
                n = c.evaluations or 1
                c.score = (c.score * n + sum(more)) / (n + len(more))
                c.evaluations = n + len(more)
            scores = full.get(c.id)
            if scores:
                c.confirmed = sum(scores) / len(scores)
                c.confirmed_seeds = len(scores)
        board.sort(key=lambda c: (c.confirmed is None, -(c.confirmed or 0.0), -c.score, c.id))
        return board if limit is None else board[:limit]

    def ranking(self) -> str:
        """``confirmed`` when some loss has full-schedule trainings, else ``proxy``."""
        if not self.has_evaluations_table():
            return "proxy"
        row = self.con.execute("SELECT 1 FROM evaluations WHERE schedule = 'full' AND "
                               "status = ? LIMIT 1", (Status.EVALUATED,)).fetchone()
        return "proxy" if row is None else "confirmed"

    def proxy_leaderboard(self, limit: int | None = None) -> list[Candidate]:
        """Evaluated losses by score (best first); one row per distinct normal form.

        A loss and its re-evaluations (copies trained again with another seed, whose
        ``duplicate_of`` names it) make one row: its score is the mean of their scores
        and ``evaluations`` their number."""
        evaluated = self.candidates("WHERE status = ? AND score IS NOT NULL",
                                    [Status.EVALUATED])
        groups: dict[int, list[Candidate]] = {}
        for c in evaluated:
            groups.setdefault(c.duplicate_of or c.id, []).append(c)
        heads = {c.id: c for c in self.candidates(
            f"WHERE id IN ({','.join('?' * len(groups))})", list(groups))} if groups else {}
        rows = []
        for gid, members in groups.items():
            head = dataclasses.replace(heads.get(gid) or members[0])
            head.score = sum(m.score for m in members) / len(members)
            head.evaluations = len(members)
            if head.status != Status.EVALUATED:  # the first training was invalid or failed
                head.metrics = members[0].metrics
            rows.append(head)
        rows.sort(key=lambda c: (-c.score, c.id))
        out, seen = [], set()
        for c in rows:
            if c.normal in seen:
                continue
            seen.add(c.normal)
            out.append(c)
            if limit is not None and len(out) >= limit:
                break
        return out


class Study(StudyReader):
    """The writer: creates or opens a study and holds its lock until closed.

    ``meta``: the metadata of a new study, written in the same transaction as its
    tables, so that a study is never seen (or left by ``kill -9``) without it.
    """

    def __init__(self, path: str | Path, meta: dict[str, Any] | None = None):
        self.path = Path(path)
        exists = check_file(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            msg = f"{self.path} is in use by another search (one writer at a time)"
            raise StudyError(msg) from None
        try:
            self.con = sqlite3.connect(str(self.path), isolation_level=None, timeout=30)
            if not exists:
                # Written in rollback-journal mode, so that the header on disk carries the
                # application id at once (in WAL mode page 1 would sit in the -wal file).
                with self.transaction():
                    self.con.execute(f"PRAGMA application_id={APPLICATION_ID}")
                    self.con.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            self.con.execute(statement)
                    if meta:
                        self.con.executemany(
                            "INSERT INTO meta(key, value) VALUES (?, ?)",
                            [(k, json.dumps(v, sort_keys=True)) for k, v in meta.items()])
            if exists and self.con.execute("PRAGMA user_version").fetchone()[0] < 2:
                with self.transaction():  # version 1 -> 2: add the evaluations table
                    for statement in _V2.split(";"):
                        if statement.strip():
                            self.con.execute(statement)
                    self.con.execute("PRAGMA user_version=2")
            self.con.execute("PRAGMA journal_mode=WAL")
            self.con.execute("PRAGMA synchronous=NORMAL")
            self.is_new = not exists
        except BaseException:
            self._release()
            raise

    def _release(self) -> None:
        con = getattr(self, "con", None)
        if con is not None:
            try:
                # Back to rollback-journal mode when idle: later readers then open the file
                # without creating -wal/-shm files beside it. Busy (a reader is open): stay.
                con.execute("PRAGMA journal_mode=DELETE")
            except sqlite3.Error:
                pass
            con.close()
            self.con = None
        if self._lock_fd is not None:
            # The flock fd is closed only after SQLite's connection: closing another fd of
            # the file while SQLite holds POSIX locks on it would drop those locks.
            os.close(self._lock_fd)
            self._lock_fd = None

    def close(self) -> None:
        self._release()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.con.execute("BEGIN IMMEDIATE")
        try:
            yield self.con
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    # -- writes --------------------------------------------------------------------
    def set_meta(self, values: dict[str, Any]) -> None:
        with self.transaction() as con:
            con.executemany(
                "INSERT INTO meta(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [(k, json.dumps(v, sort_keys=True)) for k, v in values.items()],
            )

    def next_id(self) -> int:
        return (self.con.execute("SELECT MAX(id) FROM candidates").fetchone()[0] or 0) + 1

    def next_evaluation_id(self) -> int:
        return (self.con.execute("SELECT MAX(id) FROM evaluations").fetchone()[0] or 0) + 1

    def put_evaluations(self, rows: list[Evaluation]) -> None:
        """Insert or rewrite evaluation rows in one transaction."""
        with self.transaction() as con:
            con.executemany(
                f"INSERT OR REPLACE INTO evaluations({', '.join(EVAL_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(EVAL_COLUMNS))})",
                [r.values() for r in rows],
            )

    def insert(self, rows: list[Candidate], meta: dict[str, Any] | None = None) -> None:
        """Insert one step's rows (and optional meta updates) in one transaction."""
        with self.transaction() as con:
            con.executemany(
                f"INSERT INTO candidates({', '.join(COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(COLUMNS))})",
                [r.values() for r in rows],
            )
            if meta:
                con.executemany(
                    "INSERT INTO meta(key, value) VALUES (?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    [(k, json.dumps(v, sort_keys=True)) for k, v in meta.items()],
                )

    def update(self, rows: list[Candidate], meta: dict[str, Any] | None = None) -> None:
        """Rewrite rows (a result and the waiting duplicates it settles) in one transaction."""
        with self.transaction() as con:
            sets = ", ".join(f"{c} = ?" for c in COLUMNS[1:])
            con.executemany(
                f"UPDATE candidates SET {sets} WHERE id = ?",
                [r.values()[1:] + (r.id,) for r in rows],
            )
            if meta:
                con.executemany(
                    "INSERT INTO meta(key, value) VALUES (?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    [(k, json.dumps(v, sort_keys=True)) for k, v in meta.items()],
                )
