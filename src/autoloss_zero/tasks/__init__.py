"""Tasks: the built-in ones by id, and user tasks by import path ``package.module:Class``."""

from __future__ import annotations

import importlib
import inspect
import os
import re
import sys
from typing import Any

from ..errors import TaskError
from ..textutil import clip, one_line
from .base import Branch, InvalidLoss, RawLoss, ScreeningBatch, SupervisedTask, Task

_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")

BUILTIN: dict[str, str] = {
    "classification": "autoloss_zero.tasks.classification:ClassificationTask",
    "segmentation": "autoloss_zero.tasks.segmentation:SegmentationTask",
    "pose": "autoloss_zero.tasks.pose:PoseTask",
    "detection": "autoloss_zero.tasks.detection:DetectionTask",
    "instance-segmentation": "autoloss_zero.tasks.detection:InstanceSegmentationTask",
}


def _import(path: str) -> type:
    if not isinstance(path, str):
        raise TaskError(f"a task is an id or package.module:Class, got {type(path).__name__}")
    if ":" not in path:
        known = ", ".join(BUILTIN)
        raise TaskError(
            f"unknown task {clip(path, 80)}: use a built-in id ({known}) or package.module:Class"
        )
    mod_name, _, cls_name = path.partition(":")
    if not _MODULE.match(mod_name) or not cls_name.isidentifier():
        raise TaskError(f"bad task {clip(path, 80)}: expected package.module:ClassName")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # like `python -m`: modules in the working folder
    try:
        mod = importlib.import_module(mod_name)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - any import failure is a user error
        raise TaskError(f"cannot import task module {clip(mod_name, 80)}: "
                        f"{one_line(str(exc), 200)}") from None
    cls = getattr(mod, cls_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise TaskError(f"{clip(path, 80)} is not a Task subclass")
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        raise TaskError(f"{path!r} is an abstract task class (it does not implement {missing})")
    return cls


def task_class(name: str) -> type:
    return _import(BUILTIN.get(name, name))


def get_task(name: str, **config: Any) -> Task:
    """A task by built-in id or ``package.module:Class``, with config options."""
    if isinstance(name, Task):
        return name
    cls = task_class(name)
    if name in BUILTIN:
        return cls(**config)
    try:
        return cls(**config)
    except TaskError:
        raise
    except Exception as exc:  # noqa: BLE001 - a user task's constructor may raise anything
        raise TaskError(f"task {name!r} could not be built: {type(exc).__name__}: "
                        f"{one_line(str(exc), 300)}") from None


def task_id(task: Task) -> str:
    """The id that rebuilds this task: a built-in id or its import path."""
    cls = type(task)
    path = f"{cls.__module__}:{cls.__qualname__}"
    for key, value in BUILTIN.items():
        if value == path:
            return key
    return path


__all__ = [
    "BUILTIN", "Branch", "InvalidLoss", "RawLoss", "ScreeningBatch", "SupervisedTask", "Task",
    "TaskError", "get_task", "task_class", "task_id",
]
