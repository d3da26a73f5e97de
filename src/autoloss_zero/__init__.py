"""AutoLoss-Zero: searching loss functions from scratch for generic tasks.

>>> import autoloss_zero as az
>>> study = az.search("classification", "accuracy", budget=20, study="runs/cls.db")
>>> loss_fn = az.load_loss("runs/cls.db")   # an nn.Module over (logits, labels)
"""

from .export import export_text, load_loss
from .expr import (
    Expr,
    Loss,
    MutationConfig,
    Operator,
    OperatorSet,
    get_operators,
    make_operator,
    mutate,
    offspring,
    parse,
    random_expr,
    register_operator,
)
from .search.config import SearchConfig
from .search.evolution import confirm, search
from .search.study import StudyReader
from .tasks import Task, get_task

__version__ = "0.1.0"

__all__ = [
    "Expr", "Loss", "MutationConfig", "Operator", "OperatorSet", "SearchConfig", "StudyReader",
    "Task", "__version__", "confirm", "export_text", "get_operators", "get_task", "load_loss",
    "make_operator", "mutate", "offspring", "parse", "random_expr", "register_operator",
    "search",
]
