"""Random initialization of loss expressions (paper Section 3.2, Figure 2).

Every function takes ``rng``: an int seed or a ``numpy.random.Generator``; no global
random state is used anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .ops import OperatorSet, get_operators
from .tree import DEFAULT_LEAVES, Expr, Node


def as_rng(rng: int | np.random.Generator | None) -> np.random.Generator:
    """A Generator from a seed (or the Generator itself)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        raise ValueError("pass a seed or a numpy Generator: no global random state is used")
    return np.random.default_rng(rng)


def below(rng: np.random.Generator, n: int) -> int:
    """A uniform integer in [0, n): cheaper than ``rng.integers`` for single draws."""
    return min(int(rng.random() * n), n - 1)


def check_leaves(leaves: Sequence[str]) -> tuple[str, ...]:
    leaves = tuple(leaves)
    if not leaves:
        raise ValueError("a branch needs at least one leaf")
    return leaves


def grow(rng: np.random.Generator, depth: int, leaves: tuple[str, ...], ops: OperatorSet) -> Node:
    """A full random tree: ``depth`` operators on every path, then leaves."""
    if depth <= 0:
        return leaves[below(rng, len(leaves))]
    names = ops.names
    name = names[below(rng, len(names))]
    if ops.arity[name] == 1:
        return (name, grow(rng, depth - 1, leaves, ops))
    return (name, grow(rng, depth - 1, leaves, ops), grow(rng, depth - 1, leaves, ops))


def random_expr(
    rng: int | np.random.Generator,
    depth: int = 3,
    leaves: Sequence[str] = DEFAULT_LEAVES,
    operators: OperatorSet | Sequence[str] | None = None,
) -> Expr:
    """A random expression with ``depth`` operator nodes on every path to a leaf.

    Operators are drawn uniformly from the set, children counted by arity; leaves are
    drawn with replacement from ``leaves`` (paper: ``{yhat, y, 1}``).
    """
    if depth < 0:
        raise ValueError(f"depth must be >= 0, got {depth}")
    return Expr(grow(as_rng(rng), depth, check_leaves(leaves), get_operators(operators)))
