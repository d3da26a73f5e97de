"""Paths given by users: SQLite URIs that survive any file name, and outputs that must not
overwrite inputs.

- :func:`sqlite_uri` percent-quotes the path, so that ``#``, ``?``, ``%``, spaces,
  unicode and even undecodable bytes in a file name reach SQLite as they are (an
  unquoted ``run#1.db`` would open ``run``).
- :func:`check_output` refuses an output path that is one of the command's inputs (a
  study, a config, a results file), a file SQLite keeps beside a study (``-wal``,
  ``-shm``, ``-journal``), or any autoloss-zero study: no command writes over what it
  reads, nor over a study.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Iterable
from pathlib import Path

from .textutil import clip

SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


class OutputError(ValueError):
    """An output path that would overwrite one of the command's inputs."""


def sqlite_uri(path: str | os.PathLike, **params: str) -> str:
    """A ``file:`` URI for SQLite with every special character of the path quoted."""
    raw = os.fsencode(os.path.abspath(os.fspath(path)))
    uri = "file:" + urllib.parse.quote_from_bytes(raw, safe="/")
    if params:
        uri += "?" + urllib.parse.urlencode(params)
    return uri


def is_study_file(path: Path) -> bool:
    """Whether ``path`` is a regular file that starts like an autoloss-zero study (SQLite
    header and our application id), damaged or not."""
    from .search.study import _HEADER, APPLICATION_ID

    try:
        if not path.is_file():
            return False
        with open(path, "rb") as f:
            head = f.read(100)
    except OSError:
        return False
    return (len(head) == 100 and head.startswith(_HEADER)
            and int.from_bytes(head[68:72], "big") == APPLICATION_ID)


def _same(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def check_output(output: str | os.PathLike, inputs: Iterable[str | os.PathLike],
                 option: str = "-o", studies: Iterable[str | os.PathLike] = ()) -> Path:
    """``output`` as a Path, or :class:`OutputError` if it is one of ``inputs`` or a study
    of ``studies`` (with its SQLite side files). A study is an input too: pass it in both
    or in ``studies`` only."""
    out = Path(output)
    if is_study_file(out):
        raise OutputError(f"{option} {clip(os.fspath(out), 120)} is an autoloss-zero study: "
                          "refusing to write over it; choose another output file")
    studies = [Path(s) for s in studies]
    candidates = [Path(p) for p in inputs] + studies
    for s in studies:
        candidates += [Path(os.fspath(s) + suffix) for suffix in SQLITE_SIDE_FILES]
    for p in candidates:
        if _same(out, p):
            what = "a study" if p in studies else "an input"
            raise OutputError(f"{option} {clip(os.fspath(out), 120)} is {what} of this command "
                              f"({clip(os.fspath(p), 120)}): refusing to write over it; "
                              "choose another output file")
    return out
