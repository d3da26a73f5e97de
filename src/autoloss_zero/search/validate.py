"""Checking a study's content before anything reads it as trusted or writes to it.

A study may come from someone else or be damaged (a flipped byte, a file cut short by a
crash, rows edited by hand). :func:`check_content` reads it through a read-only
connection and raises :class:`StudyError` naming the first problem: missing tables or
metadata, text that is not UTF-8, values of the wrong type, unknown statuses, a stored
config that does not load. It runs before any command uses the study (``show``,
``export``, ``report``, ``plot``) and before ``search`` writes to it, so a study that
fails it is left byte-for-byte untouched. It never imports code: task and operator
names are only checked to be text.
"""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

from ..errors import StudyError
from ..textutil import clip, one_line

REQUIRED_META = ("task", "metric", "config")
"""Metadata every study holds from its creation on (written in the creating transaction)."""
_TEXT_COLUMNS = ("formula", "normal", "fingerprint", "status", "reason", "metrics",
                 "mutation", "worker")
_INT_COLUMNS = ("id", "step", "parent", "seed", "duplicate_of", "joined")
_REAL_COLUMNS = ("g", "score", "screen_s", "train_s", "created", "finished")


def _error(path: Path, what: str):
    return StudyError(f"{path}: {what}; left untouched")


def check_content(con: sqlite3.Connection, path: Path) -> None:
    """Raise ``StudyError`` unless the study's tables, metadata and rows are well formed."""
    try:
        _check(con, path)
    except sqlite3.Error as exc:  # e.g. "Could not decode to UTF-8 column 'formula'"
        raise _error(path, f"corrupt study ({one_line(str(exc), 200)})") from None


def _check(con: sqlite3.Connection, path: Path) -> None:
    from .config import ConfigError, SearchConfig
    from .status import Status
    from .study import COLUMNS, EVAL_COLUMNS

    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    missing = [t for t in ("meta", "candidates") if t not in tables]
    if missing:
        raise _error(path, f"incomplete study (no {' or '.join(missing)} table; its creation "
                           "was interrupted?): delete it to start over")
    cols = {r[1] for r in con.execute("PRAGMA table_info(candidates)")}
    if not set(COLUMNS) <= cols:
        raise _error(path, "corrupt study (the candidates table lacks columns "
                           f"{', '.join(sorted(set(COLUMNS) - cols))})")
    meta = {}
    for key, value in con.execute("SELECT key, value FROM meta"):
        if not isinstance(key, str) or not isinstance(value, str):
            raise _error(path, f"corrupt study (meta row {clip(key, 40)} is not text)")
        try:
            meta[key] = json.loads(value)
        except (ValueError, RecursionError):
            raise _error(path, f"corrupt study (meta {clip(key, 40)} is not JSON)") from None
    absent = [k for k in REQUIRED_META if k not in meta]
    if absent:
        raise _error(path, f"incomplete study (no {', '.join(absent)} in its metadata; its "
                           "creation was interrupted?): delete it to start over")
    for key in ("task", "metric"):
        if not isinstance(meta[key], str) or not meta[key]:
            raise _error(path, f"corrupt study (meta {key} is {clip(meta[key], 60)}, not a name)")
    for key, kind in (("task_config", dict), ("operators", list), ("stats", dict)):
        if meta.get(key) is not None and not isinstance(meta[key], kind):
            raise _error(path, f"corrupt study (meta {key} is not a {kind.__name__})")
    if meta.get("operators") is not None and not all(isinstance(o, str)
                                                     for o in meta["operators"]):
        raise _error(path, "corrupt study (meta operators are not names)")
    budget = meta.get("budget")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int)):
        raise _error(path, f"corrupt study (meta budget is {clip(budget, 40)})")
    created = meta.get("created")
    if created is not None and (isinstance(created, bool) or not isinstance(created, (int, float))
                                or not math.isfinite(created)):
        raise _error(path, f"corrupt study (meta created is {clip(created, 40)})")
    try:
        SearchConfig.from_stored(meta["config"])
    except ConfigError as exc:
        raise _error(path, f"its stored config is invalid ({exc})") from None
    statuses = {s.value for s in Status}
    _check_rows(con, path, statuses)
    if "evaluations" in tables:  # schema 2 (version-1 studies have none until upgraded)
        cols = {r[1] for r in con.execute("PRAGMA table_info(evaluations)")}
        if not set(EVAL_COLUMNS) <= cols:
            raise _error(path, "corrupt study (the evaluations table lacks columns "
                               f"{', '.join(sorted(set(EVAL_COLUMNS) - cols))})")
        _check_evaluations(con, path, statuses)


def _check_rows(con: sqlite3.Connection, path: Path, statuses) -> None:
    types = ", ".join(f"typeof({c})" for c in (*_INT_COLUMNS, *_REAL_COLUMNS))
    sql = f"SELECT id, {', '.join(_TEXT_COLUMNS)}, {types} FROM candidates"
    n_text, n_int = len(_TEXT_COLUMNS), len(_INT_COLUMNS)
    for row in con.execute(sql):
        cid = row[0]
        text = dict(zip(_TEXT_COLUMNS, row[1 : 1 + n_text]))
        kinds = row[1 + n_text :]
        where = f"row {clip(cid, 30)}"
        for col in ("formula", "normal", "status"):
            if not isinstance(text[col], str):
                raise _error(path, f"corrupt study ({where}: {col} is not text)")
        for col in ("fingerprint", "reason", "metrics", "mutation", "worker"):
            if text[col] is not None and not isinstance(text[col], str):
                raise _error(path, f"corrupt study ({where}: {col} is not text)")
        if text["status"] not in statuses:
            status = clip(text['status'], 40)
            raise _error(path, f"corrupt study ({where}: unknown status {status})")
        for col, kind in zip(_INT_COLUMNS, kinds[:n_int]):
            if kind not in ("integer", "null") or (col == "id" and kind != "integer"):
                raise _error(path, f"corrupt study ({where}: {col} is {kind}, not an integer)")
        for col, kind in zip(_REAL_COLUMNS, kinds[n_int:]):
            if kind not in ("real", "integer", "null"):
                raise _error(path, f"corrupt study ({where}: {col} is {kind}, not a number)")
        if text["metrics"] is not None:
            try:
                metrics = json.loads(text["metrics"])
            except (ValueError, RecursionError):
                metrics = None
            if not isinstance(metrics, dict):
                raise _error(path, f"corrupt study ({where}: metrics are not a JSON object)")
    bad = con.execute("SELECT id FROM candidates WHERE score IN (9e999, -9e999) "
                      "OR g IN (9e999, -9e999) LIMIT 1").fetchone()
    if bad is not None:
        raise _error(path, f"corrupt study (row {bad[0]}: an infinite score)")


_EVAL_TEXT = ("kind", "schedule", "split", "status")
_EVAL_INT = ("id", "candidate", "rung", "seed")
_EVAL_REAL = ("cost", "score", "train_s", "created", "finished")


def _check_evaluations(con: sqlite3.Connection, path: Path, statuses) -> None:
    types = ", ".join(f"typeof({c})" for c in (*_EVAL_INT, *_EVAL_REAL))
    sql = f"SELECT id, {', '.join(_EVAL_TEXT)}, metrics, reason, worker, {types} FROM evaluations"
    n_text = len(_EVAL_TEXT) + 3
    for row in con.execute(sql):
        where = f"evaluation {clip(row[0], 30)}"
        text = row[1 : 1 + n_text]
        if not all(isinstance(v, str) for v in text[: len(_EVAL_TEXT)]):
            raise _error(path, f"corrupt study ({where}: kind, schedule, split or status is "
                               "not text)")
        if text[3] not in statuses:
            raise _error(path, f"corrupt study ({where}: unknown status {clip(text[3], 40)})")
        if not all(v is None or isinstance(v, str) for v in text[len(_EVAL_TEXT):]):
            raise _error(path, f"corrupt study ({where}: metrics, reason or worker is not text)")
        kinds = row[1 + n_text :]
        for col, kind in zip(_EVAL_INT, kinds[: len(_EVAL_INT)]):
            if kind != "integer" and not (col == "seed" and kind == "null"):
                raise _error(path, f"corrupt study ({where}: {col} is {kind}, not an integer)")
        for col, kind in zip(_EVAL_REAL, kinds[len(_EVAL_INT):]):
            if kind not in ("real", "integer", "null"):
                raise _error(path, f"corrupt study ({where}: {col} is {kind}, not a number)")
        metrics = text[len(_EVAL_TEXT)]
        if metrics is not None:
            try:
                ok = isinstance(json.loads(metrics), dict)
            except (ValueError, RecursionError):
                ok = False
            if not ok:
                raise _error(path, f"corrupt study ({where}: metrics are not a JSON object)")


def check_formulas(reader, parse_loss) -> None:
    """StudyError unless every formula a resumed search reads back parses (``parse_loss``:
    the search's own parser, with its task's branches and operators)."""
    from .study import StudyError

    rows = reader.candidates("WHERE joined IS NOT NULL OR status IN ('running', 'waiting')")
    for row in rows:
        try:
            parse_loss(row.formula)
        except ValueError as exc:
            raise StudyError(f"{reader.path}: row {row.id}: its formula does not parse "
                             f"({exc}); left untouched") from None
