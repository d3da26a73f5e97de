"""AutoLoss-Zero: searching loss functions from scratch for generic tasks."""

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

__version__ = "0.1.0"

__all__ = [
    "Expr", "Loss", "MutationConfig", "Operator", "OperatorSet", "get_operators",
    "make_operator", "mutate", "offspring", "parse", "random_expr", "register_operator",
    "__version__",
]
