"""The search space: operators, expressions, random initialization, mutation, export."""

from .compile import CompiledExpr, CompiledLoss, ExprModule, LossModule
from .mutate import MUTATIONS, MutationConfig, mutate, offspring
from .ops import (
    DEFAULT_OPERATORS,
    EPS,
    Operator,
    OperatorSet,
    get_operators,
    make_operator,
    register_operator,
)
from .random import random_expr
from .symbolic import to_latex, to_python, to_sympy
from .tree import CONSTANT, DEFAULT_LEAVES, Expr, Loss, as_loss, parse

__all__ = [
    "CONSTANT", "DEFAULT_LEAVES", "DEFAULT_OPERATORS", "EPS", "MUTATIONS", "CompiledExpr",
    "CompiledLoss", "Expr", "ExprModule", "Loss", "LossModule", "MutationConfig", "Operator",
    "OperatorSet", "as_loss", "get_operators", "make_operator", "mutate", "offspring", "parse",
    "random_expr", "register_operator", "to_latex", "to_python", "to_sympy",
]
