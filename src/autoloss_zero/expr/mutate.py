"""Mutations and offspring (paper Section 3.2, Figure 3), dispatched by name.

Nodes are chosen uniformly. The paper's root is an output node above the top
operator, so the top operator can be replaced, deleted (leaving a bare leaf) or get
an operator inserted above it.

- ``insert``: a uniformly drawn operator goes between a uniformly chosen node and its
  parent; a binary operator takes a uniformly drawn leaf as its other child, on a
  uniformly drawn side.
- ``delete``: a uniformly chosen operator node is removed and one of its children,
  drawn uniformly, takes its place. A bare leaf has no operator: the tree is returned
  unchanged.
- ``replace``: a uniformly chosen node gets an operator drawn uniformly among the
  others (any operator for a leaf); if it has more children than the new arity, a
  uniformly drawn subset of them is kept (in order), otherwise uniformly drawn leaves
  are added at uniformly drawn positions.
- ``graft`` (beyond the paper; weight 0 by default): a whole random term is added at a
  uniformly chosen node: a binary operator drawn uniformly joins the node and a random
  subtree of depth 1 or 2 (drawn uniformly), on a uniformly drawn side. One step can so
  add, e.g., a region-level term ``Mean_nhw(Mul(y, yhat))`` next to a per-pixel one.
- ``weight`` (beyond the paper; weight 0 by default): a uniformly chosen node is
  multiplied by a random target-only region weight, ``Mul(node, w)``: ``w`` is a region
  operator drawn uniformly (e.g. ``Mean_nhw``) over a random tree of depth 0 or 1 over
  the leaves that do not depend on the prediction (holding one other than the constant),
  under 0, 1 or 2 (drawn uniformly) unary operators drawn uniformly, on a uniformly
  drawn side; with ``weight_inverse`` = p > 0, the weight is ``Inv(w)`` with
  probability p (rare classes weigh more); with ``weight_root`` = q > 0, the weight
  multiplies the whole tree with probability q; with ``weight_unary`` (a list of unary
  operator names) the unary operators over the weight are drawn from that list only
  (e.g. ``["Sqrt"]``: weights share^a, a in {±1, ±1/2, ±1/4}). One step can so turn CE into a
  class-weighted CE, e.g. ``Mul(Neg(Log(Mul(y, yhat))), Inv(Mean_nhw(y)))`` (a weight
  per class, from the batch's class frequencies). A tree without such leaves, or
  an operator set without ``Mul`` or a region operator, is returned unchanged.

Recombination (beyond the paper; ``recombine`` = 0 by default) makes a child of two
parents: ``crossover`` replaces a uniformly chosen subtree of the first by a uniformly
chosen subtree of the second (as in genetic programming); ``sum`` adds the two trees,
``Add(a, b)``, a child that keeps both parents' terms; ``branch`` (weight 0 by default),
for losses of several searched branches, takes one whole branch from the second parent
and the others from the first (a crossover at branch boundaries: one search's members
may hold a good mask branch in one lineage and good box branches in another, issue
13.4); for a loss of one searched branch it is a ``crossover``. With ``offspring_branches
= "all"`` every branch draws its own kind, so ``branch`` alone copies the second parent.

Region sums (beyond the paper; ``region_sum`` = 0 by default) add to the step's
tournament winner the winner of a second tournament held among the members with a
region-level term (:func:`has_region_term`): ``Add(a, r)``. Region terms alone train
poorly and lose tournaments, so plain evolution rarely joins one to a working per-pixel
loss (issue 13.1); this offspring does so in one step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .ops import OperatorSet, get_operators
from .random import as_rng, below, check_leaves, grow
from .tree import (
    CONSTANT,
    DEFAULT_LEAVES,
    MAX_DEPTH,
    MAX_SIZE,
    Expr,
    Node,
    _walk,
    node_depth,
    node_size,
)

MUTATIONS = ("insert", "delete", "replace", "graft", "weight")
RECOMBINATIONS = ("crossover", "sum", "branch")
MAX_INIT_DEPTH = 8
"""Largest ``mutation.depth``: a full binary tree of depth 8 has 511 nodes, within
``parse``'s limits (``tree.MAX_SIZE``), so every random tree can be read back."""


@dataclass
class MutationConfig:
    """How offspring are made (paper defaults)."""

    copy: float = 0.1
    """Probability of copying the parent unchanged."""
    reinit: float = 0.5
    """If not copied: probability of a fresh random tree."""
    mutations: int = 2
    """If neither: number of sequential mutations."""
    weights: dict = field(default_factory=lambda: {"insert": 1.0, "delete": 1.0, "replace": 1.0,
                                                   "graft": 0.0, "weight": 0.0})
    """Relative weights of the mutation kinds (uniform over the first three in the paper;
    ``graft`` and ``weight`` are ours, off by default)."""
    recombine: float = 0.0
    """Probability that a child is a recombination of two tournament winners (0: the
    paper); else the paper's copy / re-initialize / mutate procedure."""
    recombination: dict = field(default_factory=lambda: {"crossover": 1.0, "sum": 1.0,
                                                         "branch": 0.0})
    """Relative weights of the recombination kinds (a kind left out weighs 0; ``branch``,
    a whole branch from the second parent, is off by default)."""
    region_sum: float = 0.0
    """Probability that a child is ``Add(a, r)``: ``a`` the tournament winner, ``r`` a
    region-level part of another member, chosen by ``region_pick`` (0: the paper; drawn
    before ``recombine``; without such a member the step draws as if it were 0)."""
    region_pick: str = "member"
    """How a region sum's ``r`` is chosen. ``member``: the whole winner of a tournament
    among the members with a region-level term; ``term``: one region term (see
    :func:`region_terms`) drawn uniformly among the distinct ones that the members outside
    ``a``'s group hold and ``a`` does not, negated with probability 1/2. Why ``term``: a
    region term that helps CE may train to nothing alone, so its member never wins a
    tournament (benchmarks/region_terms.py)."""
    weight_inverse: float = 0.0
    """Probability that the mutation ``weight`` inverts its weight, ``Inv(w)`` (needs
    ``Inv`` among the operators; 0: as drawn). Why: in the exploration variant ``weight``
    every weight put on a CE-like member grew with the class frequency (it up-weights the
    background) and trained below its parent, while the class-balanced CE re-trains above
    CE (benchmarks/README.md, "weight")."""
    weight_root: float = 0.0
    """Probability that the mutation ``weight`` multiplies the whole tree, ``Mul(root, w)``
    (a re-weighting of every pixel's loss, as class-weighted losses do), rather than a
    uniformly chosen node (0: always a uniformly chosen node). Why: a weight under a
    ``Log`` only adds a constant (CE's gradient is unchanged), so on CE's five nodes only
    two places make a class-weighted CE (benchmarks/weight_reach.py)."""
    weight_unary: list = field(default_factory=list)
    """The unary operators the mutation ``weight`` draws over its weight, e.g.
    ``["Sqrt"]`` (each must be a unary operator of the searched set; empty: all of
    them, as ``weight`` drew before this option). Why: the class-balanced CE's weight is
    ``Inv(Sqrt(Mean_nhw(y)))``; with the 12 default unary operators a step from CE draws
    that exponent (-1/2) on about 1.5% of mutation steps, inverse frequency (-1) four
    times as often (benchmarks/weight_reach.py)."""
    depth: int = 3
    """Depth of random (re-)initialization."""
    max_size: int | None = None
    """Optional cap on the number of nodes of a child (off in the paper)."""
    copy_mode: str = "reuse"
    """What a copy means when proxy scores are noisy. ``reuse``: the copy joins with the
    parent's score, untrained (the paper, literally; free: it costs no training);
    ``reevaluate``: the parent's loss is trained again with a fresh seed and its score
    becomes the mean of its evaluations. Measured on classification (100 proxy trainings,
    seed 0, results/issue16/): reuse 0.934 ± 0.008, reevaluate 0.892 ± 0.029 re-trained,
    so the paper's copy stays the default."""

    def __post_init__(self):
        if self.copy_mode not in ("reevaluate", "reuse"):
            raise ValueError(f"mutation.copy_mode must be 'reevaluate' or 'reuse', got "
                             f"{self.copy_mode!r}")
        for name in ("copy", "reinit"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"mutation.{name} must be in [0, 1], got {v}")
        unknown = set(self.weights) - set(MUTATIONS)
        if unknown:
            raise ValueError(
                f"unknown mutation kind(s) {', '.join(sorted(unknown))}; known: "
                f"{', '.join(MUTATIONS)}"
            )
        for k, w in self.weights.items():
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
                raise ValueError(f"mutation.weights.{k} must be a finite number, got {w!r:.40}")
        if any(w < 0 for w in self.weights.values()) or sum(self.weights.values()) <= 0:
            raise ValueError("mutation.weights must be >= 0 with a positive sum")
        # a kind left out weighs 0 (studies made before a kind existed compare equal)
        self.weights = {k: self.weights.get(k, 0.0) for k in MUTATIONS}
        if self.region_pick not in ("member", "term"):
            raise ValueError(f"mutation.region_pick must be 'member' or 'term', got "
                             f"{self.region_pick!r:.40}")
        for name in ("recombine", "region_sum", "weight_inverse", "weight_root"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
                raise ValueError(f"mutation.{name} must be in [0, 1], got {v!r:.40}")
        if not isinstance(self.weight_unary, (list, tuple)) or not all(
                isinstance(n, str) for n in self.weight_unary):
            raise ValueError(f"mutation.weight_unary must be a list of operator names, got "
                             f"{self.weight_unary!r:.40}")
        self.weight_unary = list(self.weight_unary)
        unknown = set(self.recombination) - set(RECOMBINATIONS)
        if unknown:
            raise ValueError(f"unknown recombination kind(s) {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(RECOMBINATIONS)}")
        for k, w in self.recombination.items():
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
                raise ValueError(f"mutation.recombination.{k} must be a finite number, "
                                 f"got {w!r:.40}")
        if any(w < 0 for w in self.recombination.values()) or \
                sum(self.recombination.values()) <= 0:
            raise ValueError("mutation.recombination must be >= 0 with a positive sum")
        # a kind left out weighs 0 (studies made before ``branch`` existed compare equal)
        self.recombination = {k: self.recombination.get(k, 0.0) for k in RECOMBINATIONS}
        if not 1 <= self.mutations <= 100:
            raise ValueError(f"mutation.mutations must be in 1..100, got {self.mutations}")
        if not 0 <= self.depth <= MAX_INIT_DEPTH:
            raise ValueError(f"mutation.depth must be in 0..{MAX_INIT_DEPTH}, got {self.depth}")
        if self.max_size is not None and (isinstance(self.max_size, bool) or not isinstance(
                self.max_size, int) or not 1 <= self.max_size <= MAX_SIZE):
            raise ValueError(f"mutation.max_size must be in 1..{MAX_SIZE} or None, "
                             f"got {self.max_size}")


def _paths(node: Node, prefix: tuple = (), out: list | None = None, ops_only=False) -> list:
    out = [] if out is None else out
    if isinstance(node, str):
        if not ops_only:
            out.append(prefix)
        return out
    out.append(prefix)
    for i, c in enumerate(node[1:], start=1):
        _paths(c, prefix + (i,), out, ops_only)
    return out


def _get(node: Node, path: tuple) -> Node:
    for i in path:
        node = node[i]
    return node


def _put(node: Node, path: tuple, new: Node) -> Node:
    if not path:
        return new
    i = path[0]
    return node[:i] + (_put(node[i], path[1:], new),) + node[i + 1 :]


def _pick(node: Node, rng: np.random.Generator) -> tuple[tuple, Node]:
    """A uniformly chosen node of the tree: its path and the subtree there."""
    paths = _paths(node)
    path = paths[below(rng, len(paths))]
    return path, _get(node, path)


def _insert(node, rng, leaves, ops, prediction=(), config=None):
    path, target = _pick(node, rng)
    name = ops.names[below(rng, len(ops.names))]
    if ops.arity[name] == 1:
        new = (name, target)
    else:
        other = leaves[below(rng, len(leaves))]
        new = (name, target, other) if rng.random() < 0.5 else (name, other, target)
    return _put(node, path, new)


def _delete(node, rng, leaves, ops, prediction=(), config=None):
    paths = _paths(node, ops_only=True)
    if not paths:
        return node
    path = paths[below(rng, len(paths))]
    target = _get(node, path)
    kept = target[1 + below(rng, len(target) - 1)]
    return _put(node, path, kept)


def _replace(node, rng, leaves, ops, prediction=(), config=None):
    path, target = _pick(node, rng)
    current = None if isinstance(target, str) else target[0]
    choices = [n for n in ops.names if n != current] or list(ops.names)
    name = choices[below(rng, len(choices))]
    arity = ops.arity[name]
    children = [] if isinstance(target, str) else list(target[1:])
    while len(children) > arity:
        children.pop(below(rng, len(children)))
    while len(children) < arity:
        children.insert(below(rng, len(children) + 1), leaves[below(rng, len(leaves))])
    return _put(node, path, (name, *children))


def _graft(node, rng, leaves, ops, prediction=(), config=None):
    path, target = _pick(node, rng)
    binary = ops.binary or ops.names
    name = binary[below(rng, len(binary))]
    term = grow(rng, 1 + below(rng, 2), leaves, ops)
    if ops.arity[name] == 1:  # a set without binary operators: the term replaces the node
        return _put(node, path, (name, term))
    new = (name, target, term) if rng.random() < 0.5 else (name, term, target)
    return _put(node, path, new)


def _weight(node, rng, leaves, ops, prediction=(), config=None):
    plain = tuple(leaf for leaf in leaves if leaf not in prediction)
    region = tuple(n for n in ops.names if ops[n].region)
    if not prediction or set(plain) <= {CONSTANT} or not region or "Mul" not in ops.names:
        return node
    root = config.weight_root if config is not None else 0.0
    if root and rng.random() < root:  # no draw when 0: the whole loss is re-weighted
        path, target = (), node
    else:
        path, target = _pick(node, rng)
    for _ in range(100):  # a term over the constant alone is constant: drawn again
        inner = grow(rng, below(rng, 2), plain, ops)
        if any(isinstance(n, str) and n != CONSTANT for n in _walk(inner)):
            break
    term = (region[below(rng, len(region))], inner)
    unary = ops.unary
    if config is not None and config.weight_unary:
        unary = tuple(n for n in config.weight_unary if n in ops.unary)
    for _ in range(below(rng, 3) if unary else 0):
        term = (unary[below(rng, len(unary))], term)
    inverse = config.weight_inverse if config is not None else 0.0
    if inverse and "Inv" in ops.names and rng.random() < inverse:  # no draw when 0
        term = ("Inv", term)
    new = ("Mul", target, term) if rng.random() < 0.5 else ("Mul", term, target)
    return _put(node, path, new)


_DISPATCH = {"insert": _insert, "delete": _delete, "replace": _replace, "graft": _graft,
             "weight": _weight}


def recombine(a: Node, b: Node, rng: np.random.Generator, how: str) -> Node:
    """A child of two trees: ``crossover`` (a uniformly chosen subtree of ``a`` replaced
    by a uniformly chosen subtree of ``b``), ``sum`` (``Add(a, b)``) or ``branch``
    (``b`` whole: the branch taken from the second parent)."""
    if how == "sum":
        return ("Add", a, b)
    if how == "branch":
        return b
    if how != "crossover":
        raise ValueError(f"unknown recombination {how!r}; known: {', '.join(RECOMBINATIONS)}")
    pa, pb = _paths(a), _paths(b)
    return _put(a, pa[below(rng, len(pa))], _get(b, pb[below(rng, len(pb))]))


def mutate(
    expr: Expr,
    rng: int | np.random.Generator,
    kind: str,
    leaves: Sequence[str] = DEFAULT_LEAVES,
    operators: OperatorSet | Sequence[str] | None = None,
    prediction: Sequence[str] = ("yhat",),
    config: MutationConfig | None = None,
) -> Expr:
    """Apply one mutation ``kind`` (one of :data:`MUTATIONS`); ``prediction``: the leaves
    that depend on the prediction (``weight`` builds its term from the others);
    ``config``: options a kind reads (``weight_inverse``; none: the defaults)."""
    fn = _DISPATCH.get(kind)
    if fn is None:
        raise ValueError(f"unknown mutation {kind!r}; known: {', '.join(MUTATIONS)}")
    return Expr(fn(expr.node, as_rng(rng), check_leaves(leaves), get_operators(operators),
                   tuple(prediction), config))


def _draw_kind(rng: np.random.Generator, weights: dict, names=MUTATIONS) -> str:
    kinds = [k for k in names if weights.get(k, 0) > 0]
    total = sum(weights[k] for k in kinds)
    r = rng.random() * total
    for k in kinds:
        r -= weights[k]
        if r < 0:
            return k
    return kinds[-1]


OFFSPRING_KINDS = ("copy", "reinit", "mutate", "recombine", "region_sum")


def draw_kind(rng: np.random.Generator, config: MutationConfig, region: bool = True) -> str:
    """The offspring kind: ``region_sum`` with p = region_sum (0 in the paper; skipped
    when ``region`` is False), else ``recombine`` with p = recombine (0 in the paper),
    else the paper's ``copy`` with p = copy, else ``reinit`` with p = reinit, else
    ``mutate`` (10% / 45% / 45% with the defaults)."""
    if region and config.region_sum and rng.random() < config.region_sum:
        return "region_sum"
    if config.recombine and rng.random() < config.recombine:
        return "recombine"
    if rng.random() < config.copy:
        return "copy"
    if rng.random() < config.reinit:
        return "reinit"
    return "mutate"


def make_child(
    expr: Expr,
    rng: np.random.Generator,
    leaves: tuple[str, ...],
    ops: OperatorSet,
    config: MutationConfig,
    kind: str,
    other: Expr | None = None,
    prediction: Sequence[str] = ("yhat",),
    branches: bool = False,
) -> tuple[Expr, str]:
    """One child of a given kind and its label (``copy``, ``reinit``, e.g.
    ``insert+replace``, or ``crossover``/``sum``/``branch`` with the second parent
    ``other``); with ``max_size``, redrawn (same kind) until it fits. ``prediction``: the
    leaves that depend on the prediction (for ``weight``); ``branches``: the tree is one
    of several searched branches (else a ``branch`` recombination is a ``crossover``)."""
    if kind == "copy":
        return expr, "copy"
    if kind not in OFFSPRING_KINDS:
        raise ValueError(f"unknown offspring kind {kind!r}; known: {', '.join(OFFSPRING_KINDS)}")
    if kind == "region_sum":
        if other is None:
            raise ValueError("a region sum needs a second parent")
        node = ("Add", expr.node, other.node)
        return (Expr(node), "region_sum") if within_limits(node, config.max_size) else \
            (expr, "copy")
    if kind == "recombine":
        if other is None:
            raise ValueError("recombination needs a second parent")
        for _ in range(100):
            how = _draw_kind(rng, config.recombination, RECOMBINATIONS)
            if (how == "sum" and "Add" not in ops.names) or (how == "branch" and not branches):
                how = "crossover"
            node = recombine(expr.node, other.node, rng, how)
            if within_limits(node, config.max_size):
                return Expr(node), how
        return expr, "copy"
    for _ in range(100):
        if kind == "reinit":
            node, label = grow(rng, config.depth, leaves, ops), "reinit"
        else:
            node, kinds = expr.node, []
            for _ in range(config.mutations):
                k = _draw_kind(rng, config.weights)
                node = _DISPATCH[k](node, rng, leaves, ops, prediction, config)
                kinds.append(k)
            label = "+".join(kinds)
        if within_limits(node, config.max_size):
            return Expr(node), label
    return expr, "copy"


def has_region_term(node: Node, ops: OperatorSet, prediction: Sequence[str],
                    target: Sequence[str]) -> bool:
    """Whether the tree holds a region-level term: a region operator (``Operator.region``,
    e.g. ``Mean_nhw``) over a subtree holding both a ``prediction`` and a ``target`` leaf."""
    if isinstance(node, str):
        return False
    if ops[node[0]].region:
        leaves = {n for n in _walk(node) if isinstance(n, str)}
        if leaves & set(prediction) and leaves & set(target):
            return True
    return any(has_region_term(c, ops, prediction, target) for c in node[1:])


def region_terms(node: Node, ops: OperatorSet, prediction: Sequence[str],
                 target: Sequence[str]) -> list[Node]:
    """The region terms of a tree: its largest subtrees whose every ``prediction`` leaf
    lies below a region operator and that hold a region-level term (see
    :func:`has_region_term`); e.g. the whole soft Dice term of CE + Dice, not its two
    means. Outermost first, left to right."""
    pred = set(prediction)

    def pure(n: Node) -> bool:
        if isinstance(n, str):
            return n not in pred
        return ops[n[0]].region or all(pure(c) for c in n[1:])

    out: list[Node] = []

    def walk(n: Node) -> None:
        if isinstance(n, str):
            return
        if pure(n) and has_region_term(n, ops, prediction, target):
            out.append(n)
            return
        for c in n[1:]:
            walk(c)

    walk(node)
    return out


def within_limits(node: Node, max_size: int | None = None) -> bool:
    """Whether ``parse`` accepts the tree (and it has at most ``max_size`` nodes)."""
    size = node_size(node)
    return size <= (MAX_SIZE if max_size is None else min(max_size, MAX_SIZE)) and (
        size <= MAX_DEPTH or node_depth(node) <= MAX_DEPTH)


def offspring_with_label(
    expr: Expr,
    rng: np.random.Generator,
    leaves: tuple[str, ...],
    ops: OperatorSet,
    config: MutationConfig,
) -> tuple[Expr, str]:
    """One child and how it was made (``copy``, ``reinit`` or e.g. ``insert+replace``)."""
    return make_child(expr, rng, leaves, ops, config, draw_kind(rng, config))


def offspring(
    expr: Expr,
    rng: int | np.random.Generator,
    leaves: Sequence[str] = DEFAULT_LEAVES,
    depth: int = 3,
    operators: OperatorSet | Sequence[str] | None = None,
    config: MutationConfig | None = None,
) -> Expr:
    """A child of ``expr`` (paper): copy with p=0.1, else re-initialize with p=0.5,
    else two sequential mutations, each drawn uniformly from insert/delete/replace."""
    if config is None:
        config = MutationConfig(depth=depth)
    child, _ = offspring_with_label(
        expr, as_rng(rng), check_leaves(leaves), get_operators(operators), config
    )
    return child
