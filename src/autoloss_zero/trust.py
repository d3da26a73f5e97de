"""What code a study may make us import: nothing it names, unless the user says so.

A study file may come from someone else. Its metadata names a task (``package.module:
Class`` for a user task) and its config may name ``operator_modules``; importing either
runs that module's code, with the working folder on the import path. So:

- reading a study (``show``, ``plot``, ``report``, ``export``, :func:`load_loss`) never
  imports a module the study names. Built-in tasks are always fine. A user task or an
  operator module is used only if it is already imported in this process (no new code
  runs), or with an explicit ``trust`` (``--trust-study`` on the command line);
- commands that train (``search``, ``compare``) import only the task the user names with
  ``--task`` and the operator modules of a config the user passes; resuming a study
  whose stored config names operator modules needs ``--config`` or ``--trust-study``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from .search.study import StudyError
from .tasks import BUILTIN
from .textutil import clip


class UntrustedStudyError(StudyError):
    """Using the study would import code it names, and the user did not allow that."""


def builtin_task(name: str) -> bool:
    """Whether ``name`` is a built-in task (an id, or the import path of one)."""
    return name in BUILTIN or name in BUILTIN.values()


def already_imported(task: str) -> bool:
    """Whether the module of the user task ``package.module:Class`` is already imported."""
    module, sep, _ = task.partition(":")
    return bool(sep) and module in sys.modules


def check_task(path, task: str, trust: bool, hint: str = "--trust-study") -> None:
    """UntrustedStudyError unless the study's task can be built without importing its code."""
    if trust or builtin_task(task) or already_imported(task):
        return
    raise UntrustedStudyError(
        f"{path} was made with the user task {clip(task, 120)}: using it would import and "
        f"run that module; pass {hint} if you trust this study"
    )


def check_operator_modules(path, modules: Iterable[str], trust: bool,
                           allowed: Iterable[str] = (), hint: str = "--trust-study") -> None:
    """UntrustedStudyError unless every operator module the study names is allowed (named by
    the user), already imported, or ``trust`` is set."""
    allowed = set(allowed)
    new = [m for m in modules if m not in allowed and m not in sys.modules]
    if new and not trust:
        names = ", ".join(clip(m, 60) for m in new[:3])
        raise UntrustedStudyError(
            f"{path} uses operators from the module(s) {names}: using it would import and "
            f"run them; pass {hint} if you trust this study"
        )
