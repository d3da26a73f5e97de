"""AutoLoss-Zero: searching loss functions from scratch for generic tasks.

>>> import autoloss_zero as az
>>> study = az.search("classification", "accuracy", budget=20, study="runs/cls.db")
>>> loss_fn = az.load_loss("runs/cls.db")   # an nn.Module over (logits, labels)

The names below are imported on first use (PEP 562), so that ``import autoloss_zero``
and its light modules (``autoloss_zero.errors``) do not import torch.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_HOMES = {
    "export": ("export_text", "load_loss"),
    "expr": ("Expr", "Loss", "MutationConfig", "Operator", "OperatorSet", "get_operators",
             "make_operator", "mutate", "offspring", "parse", "random_expr",
             "register_operator"),
    "search.config": ("SearchConfig",),
    "search.driver": ("confirm", "search"),
    "search.study": ("StudyReader",),
    "tasks": ("Task", "get_task"),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = sorted([*_HOME_OF, "__version__"])

# ``search`` names both the function and the subpackage ``autoloss_zero.search``, which
# Python binds on this package when it is first imported. It is imported here (it is
# empty) and its binding dropped, so that ``autoloss_zero.search`` is the function, as
# it was when this module imported everything at once.
importlib.import_module(f"{__name__}.search")
del globals()["search"]


def __getattr__(name: str):
    module = _HOME_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME_OF})
