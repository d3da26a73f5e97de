"""Which config a search runs with, decided in one place for the CLI and the Python API.

The rules (DESIGN.md, "Studies"):

- resuming a study, the **stored** config wins; a config given with it (a TOML file or a
  :class:`SearchConfig`, and overrides such as the CLI's ``--seed`` and ``--fix``) must
  equal it, else the search is refused with every difference (:class:`StudyError`,
  exit code 2), before anything is written;
- a new study runs with the given config, overrides applied; with none, the defaults,
  overrides applied.

The CLI passes only what the user said (a TOML path or nothing, and the overrides it was
given); the Python API passes its ``config`` and ``overrides`` arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import StudyError
from ..tasks import BUILTIN, task_id
from ..tasks.base import canonical_options
from .config import ADDED_LATER, SearchConfig, config_diff
from .study import StudyReader, check_file


@dataclass
class ResolvedConfig:
    config: SearchConfig
    """What the search runs with."""
    given: SearchConfig | None
    """What the caller said (overrides applied), None if nothing: on resume, it must
    equal the stored config."""
    meta: dict[str, Any] | None
    """The study's metadata when it resumes one, None for a new study."""


def resolve_config(study: str | Path | None, config: SearchConfig | str | Path | None = None,
                   overrides: Mapping[str, Any] | None = None) -> ResolvedConfig:
    """The config of a search on ``study`` (None or an absent file: a new study), given
    ``config`` (a :class:`SearchConfig` or a TOML file, None: nothing given) and
    ``overrides`` (top-level config keys, e.g. ``{"seed": 3}``, applied on top of the
    given config, else of the stored one, else of the defaults). A config that differs
    from the stored one is refused by :func:`check_same_search`."""
    meta = read_meta(Path(study)) if study is not None else None
    stored = SearchConfig.from_stored(meta["config"]) if meta is not None else None
    given = SearchConfig.from_toml(config) if isinstance(config, (str, Path)) else config
    if overrides:
        base = given or stored or SearchConfig()
        given = SearchConfig.from_dict({**base.to_dict(), **overrides})
    return ResolvedConfig(stored or given or SearchConfig(), given, meta)


NONE_STORED_MEANT = {"fit_steps": {"pose": 200}}
"""What "the task's choice" (None) stored by studies made before choices were stored
resolved to, for the built-in tasks (others: 0); a user task's choice is its value today."""


def with_task_choices(config: SearchConfig, task, resumed: bool = False) -> SearchConfig:
    """``config`` with every "the task's choice" (None) replaced by the task's value, as a
    new study stores it: a later release that changes a task's default does not change a
    study made before it. ``resumed``: the config is stored in a study made before choices
    were stored (2026-12-01), whose None means :data:`NONE_STORED_MEANT`."""
    if config.screening.fit_steps is not None:
        return config
    steps = int(task.screening_fit_steps)
    if resumed and task_id(task) in BUILTIN:
        steps = NONE_STORED_MEANT["fit_steps"].get(task_id(task), 0)
    data = config.to_dict()
    data["screening"]["fit_steps"] = steps
    return SearchConfig.from_dict(data)


def read_meta(path: Path) -> dict[str, Any] | None:
    """The metadata of the study at ``path``; None if there is none (absent, empty)."""
    if not check_file(path):
        return None
    with StudyReader(path) as r:
        return r.meta()


def check_same_search(path: Path, meta: dict[str, Any], task_id: str, task_config: dict,
                      metric: str, given: SearchConfig | None) -> None:
    """Refuse (:class:`StudyError`, naming every difference) a search that differs from
    the one stored in ``meta``: its task, the task's effective options, metric or given
    config."""
    problems = []
    if meta.get("task") != task_id:
        problems.append(f"task: {meta.get('task')} (stored) != {task_id} (given)")
    if meta.get("metric") != metric:
        problems.append(f"metric: {meta.get('metric')} (stored) != {metric} (given)")
    if given is not None:  # task options are compared by their effect, just below
        stored, new = SearchConfig.from_stored(meta["config"]).to_dict(), given.to_dict()
        stored.pop("task_options", None)
        new.pop("task_options", None)
        # a field added after the study was made, given at today's default: the study
        # keeps the value it ran with (the same TOML resumes it after an upgrade)
        defaults = SearchConfig().to_dict()
        for section, key in ADDED_LATER:
            raw = meta["config"].get(section) if isinstance(meta["config"], dict) else None
            if isinstance(raw, dict) and key not in raw \
                    and new[section][key] == defaults[section][key]:
                new[section][key] = stored[section][key]
        # "the task's choice" given on resume: the choice stored when the study was made
        if new["screening"].get("fit_steps") is None:
            new["screening"]["fit_steps"] = stored["screening"]["fit_steps"]
        problems += config_diff(stored, new)
    # the task's options as they train (a proxy override equal to its base option, or a
    # default that a config spells out, is the same search)
    stored_options = canonical_options(meta.get("task_config") or {})
    if stored_options != canonical_options(task_config):
        problems += config_diff(stored_options, canonical_options(task_config), "task.")
    if problems:
        raise StudyError(f"{path} holds a different search: " + "; ".join(problems))
