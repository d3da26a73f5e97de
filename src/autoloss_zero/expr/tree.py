"""Loss expressions: immutable trees, their text form, a real parser, and the normal form.

A node is a plain Python value: a leaf is its name (``"yhat"``, ``"y"``, ``"1"``), an
operator node is a tuple ``(op_name, child, ...)``. :class:`Expr` wraps one such tree;
:class:`Loss` holds ordered, named branches. Text form (DESIGN.md): ``Op(a, b)`` with a
single space after each comma; a multi-branch loss is ``name: EXPR; name: EXPR``.
``str(parse(s)) == s`` for any text in this form; ``str()`` never rewrites a tree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from ..textutil import clip
from .ops import DEFAULT_OPERATORS, Operator, OperatorSet, get_operators, registered

Node = str | tuple

CONSTANT = "1"
DEFAULT_LEAVES: tuple[str, ...] = ("yhat", "y", CONSTANT)
SINGLE_BRANCH = "loss"
_LEAF_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")

MAX_DEPTH = 100
"""The deepest tree :func:`parse` accepts (operators on the longest path to a leaf).

Every method of :class:`Expr` (text, depth, size, normal form, ``to_module``, LaTeX,
sympy, standalone source) works on every tree within these limits; a deeper or larger
text is a clear ``ValueError`` at parse time. Searches never make such trees: their
random trees have depth ``mutation.depth`` (at most 8) and offspring beyond the limits
are drawn again (``expr.mutate``). The paper's trees have depth 3 to about 10."""
MAX_SIZE = 1000
"""The most nodes (operators and leaves) one expression of :func:`parse` may have."""


def _walk(node: Node):
    """Every node of a tree, parents before children (iterative: no recursion limit)."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        if not isinstance(n, str):
            stack.extend(reversed(n[1:]))


def node_text(node: Node) -> str:
    # Iterative, so that the text of any tree is available however deep it is. Leaves,
    # ")" and ", " are all strings pushed on the stack and copied out as they come.
    out: list[str] = []
    stack: list = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, str):
            out.append(n)
            continue
        out.append(n[0] + "(")
        stack.append(")")
        for i in range(len(n) - 1, 0, -1):
            stack.append(n[i])
            if i > 1:
                stack.append(", ")
    return "".join(out)


def node_depth(node: Node) -> int:
    best = 0
    stack = [(node, 0)]
    while stack:
        n, d = stack.pop()
        if isinstance(n, str):
            best = max(best, d)
        else:
            stack.extend((c, d + 1) for c in n[1:])
    return best


def node_size(node: Node) -> int:
    return sum(1 for _ in _walk(node))


def node_leaves(node: Node, out: set | None = None) -> set:
    out = set() if out is None else out
    out.update(n for n in _walk(node) if isinstance(n, str))
    return out


def node_ops(node: Node, out: set | None = None) -> set:
    out = set() if out is None else out
    out.update(n[0] for n in _walk(node) if not isinstance(n, str))
    return out


class Expr:
    """An immutable, hashable loss expression (one branch)."""

    __slots__ = ("node", "_text", "_key")

    def __init__(self, node: Node):
        object.__setattr__(self, "node", node)
        object.__setattr__(self, "_text", None)
        object.__setattr__(self, "_key", None)

    def __setattr__(self, name, value):
        raise AttributeError("Expr is immutable")

    # -- identity ---------------------------------------------------------
    def __str__(self) -> str:
        if self._text is None:
            object.__setattr__(self, "_text", node_text(self.node))
        return self._text

    def __repr__(self) -> str:
        return f"Expr({str(self)!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Expr) and self.node == other.node

    def __hash__(self) -> int:
        return hash(self.node)

    def __reduce__(self):
        return (Expr, (self.node,))

    # -- structure --------------------------------------------------------
    @property
    def depth(self) -> int:
        """Operators on the longest path from the top operator to a leaf (a leaf: 0)."""
        return node_depth(self.node)

    @property
    def size(self) -> int:
        """Number of nodes, operators and leaves."""
        return node_size(self.node)

    @property
    def leaves(self) -> frozenset:
        return frozenset(node_leaves(self.node))

    @property
    def operators(self) -> frozenset:
        return frozenset(node_ops(self.node))

    @property
    def is_leaf(self) -> bool:
        return isinstance(self.node, str)

    # -- normal form (a hash key only) -------------------------------------
    @property
    def key(self) -> str:
        """Text of the normal form: equal keys mean equal values (never the converse)."""
        if self._key is None:
            object.__setattr__(self, "_key", normal_key(self.node))
        return self._key

    def normal_form(self) -> Expr:
        return Expr(normalize(self.node)[0])

    # -- conversions (implemented in compile.py / symbolic.py) --------------
    def to_module(self, operators: OperatorSet | Sequence[str] | None = None):
        from .compile import ExprModule

        return ExprModule(self, operators)

    def sympy(self, operators=None):
        from .symbolic import to_sympy

        return to_sympy(self, operators)

    def latex(self, operators=None) -> str:
        from .symbolic import to_latex

        return to_latex(self, operators)


class Loss:
    """A loss with ordered, named branches; its value is the sum of the branches.

    A single-branch loss (one branch named ``loss``) is written as a bare expression.
    """

    __slots__ = ("branches",)

    def __init__(self, branches: Mapping[str, Expr] | Iterable[tuple[str, Expr]]):
        items = list(branches.items()) if isinstance(branches, Mapping) else list(branches)
        if not items:
            raise ValueError("a loss needs at least one branch")
        seen = set()
        for name, e in items:
            if not _LEAF_NAME.match(name):
                raise ValueError(f"bad branch name {name!r}")
            if name in seen:
                raise ValueError(f"branch {name!r} given twice")
            if not isinstance(e, Expr):
                raise TypeError(f"branch {name!r}: expected an Expr, got {type(e).__name__}")
            seen.add(name)
        object.__setattr__(self, "branches", tuple(items))

    def __setattr__(self, name, value):
        raise AttributeError("Loss is immutable")

    @classmethod
    def single(cls, expr: Expr) -> Loss:
        return cls([(SINGLE_BRANCH, expr)])

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.branches)

    def __getitem__(self, name: str) -> Expr:
        for n, e in self.branches:
            if n == name:
                return e
        raise KeyError(name)

    def replace(self, name: str, expr: Expr) -> Loss:
        return Loss([(n, expr if n == name else e) for n, e in self.branches])

    def __str__(self) -> str:
        if len(self.branches) == 1 and self.branches[0][0] == SINGLE_BRANCH:
            return str(self.branches[0][1])
        return "; ".join(f"{n}: {e}" for n, e in self.branches)

    def __repr__(self) -> str:
        return f"Loss({str(self)!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Loss) and self.branches == other.branches

    def __hash__(self) -> int:
        return hash(self.branches)

    def __reduce__(self):
        return (Loss, (self.branches,))

    @property
    def key(self) -> str:
        return "; ".join(f"{n}: {e.key}" for n, e in self.branches)

    @property
    def depth(self) -> int:
        return max(e.depth for _, e in self.branches)

    @property
    def size(self) -> int:
        return sum(e.size for _, e in self.branches)

    def to_module(self, operators=None):
        from .compile import LossModule

        return LossModule(self, operators)

    def latex(self, operators=None) -> str:
        from .symbolic import to_latex

        return to_latex(self, operators)

    def sympy(self, operators=None):
        from .symbolic import to_sympy

        return to_sympy(self, operators)


def as_loss(x: Expr | Loss) -> Loss:
    return x if isinstance(x, Loss) else Loss.single(x)


# ---------------------------------------------------------------------------
# Parser


_TOKEN = re.compile(r"\s*(?:([A-Za-z_][A-Za-z0-9_]*)|(\d+(?:\.\d*)?)|(.))")


class _Parser:
    def __init__(self, text, offset, full, leaves: Sequence[str], operators: OperatorSet):
        self.text = text
        self.offset = offset
        self.full = full
        self.leaves = leaves
        self.ops = operators
        self.pos = 0
        self.nodes = 0

    def error(self, pos: int, what: str) -> ValueError:
        at = pos + self.offset
        return ValueError(f"position {at}: {what} in {clip(self.full, pos=at)}")

    def skip_ws(self):
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def expect(self, ch: str, after: str):
        self.skip_ws()
        if self.pos >= len(self.text):
            raise self.error(self.pos, f"expected {ch!r} {after}, found end of text")
        if self.text[self.pos] != ch:
            raise self.error(self.pos, f"expected {ch!r} {after}, found {self.text[self.pos]!r}")
        self.pos += 1

    def parse_node(self, depth: int = 0) -> Node:
        self.skip_ws()
        start = self.pos
        self.nodes += 1
        if self.nodes > MAX_SIZE:
            raise self.error(start, f"more than {MAX_SIZE} nodes (the maximum size)")
        m = _TOKEN.match(self.text, self.pos)
        if m is None or self.pos >= len(self.text):
            raise self.error(self.pos, "expected an operator or a leaf, found end of text")
        name, number, other = m.groups()
        if other is not None:
            raise self.error(start, f"expected an operator or a leaf, found {other!r}")
        self.pos = m.end()
        if number is not None:
            if number != CONSTANT:
                raise self.error(start, f"only the constant 1 is allowed, found "
                                        f"{clip(number, 40)}")
            return CONSTANT
        # name: operator if followed by '(' else leaf
        save = self.pos
        self.skip_ws()
        if self.pos < len(self.text) and self.text[self.pos] == "(":
            if name not in self.ops:
                raise self.error(
                    start, f"unknown operator {clip(name, 40)} (known: {', '.join(self.ops.names)})"
                )
            if depth >= MAX_DEPTH:
                raise self.error(start, f"deeper than {MAX_DEPTH} operators (the maximum depth)")
            self.pos += 1
            arity = self.ops.arity[name]
            children = [self.parse_node(depth + 1)]
            for _ in range(arity - 1):
                self.expect(",", f"between the {arity} arguments of {name}")
                children.append(self.parse_node(depth + 1))
            self.skip_ws()
            if self.pos < len(self.text) and self.text[self.pos] == ",":
                raise self.error(self.pos, f"{name} takes {arity} argument(s), found more")
            self.expect(")", f"to close {name}(")
            return (name, *children)
        self.pos = save
        if name in self.ops:
            raise self.error(start, f"expected '(' after operator {name!r}")
        if name not in self.leaves:
            allowed = ", ".join(dict.fromkeys([*self.leaves, CONSTANT]))
            raise self.error(start, f"unknown leaf {clip(name, 40)} (allowed: {allowed})")
        return name

    def parse_all(self) -> Node:
        node = self.parse_node()
        self.skip_ws()
        if self.pos != len(self.text):
            raise self.error(self.pos, f"unexpected text {clip(self.text[self.pos:], 40)} after "
                                       "the end")
        return node


LeafSpec = Sequence[str] | Mapping[str, Sequence[str]] | None


def _check_leaf_names(names, what: str) -> tuple[str, ...]:
    if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
        raise TypeError(f"{what}: expected a sequence of leaf names, got {type(names).__name__}")
    names = tuple(names)
    for n in names:
        if not isinstance(n, str):
            raise TypeError(f"{what}: leaf names must be str, got {type(n).__name__} {clip(n, 40)}")
        if n != CONSTANT and not _LEAF_NAME.match(n):
            raise ValueError(f"{what}: bad leaf name {clip(n, 40)} (lower-case letters, digits, "
                             "'_'; not starting with a digit)")
    return names


def _check_leaf_spec(leaves) -> LeafSpec:
    """``leaves`` of :func:`parse`, type-checked: None, names, or ``{branch: names}``."""
    if leaves is None:
        return None
    if isinstance(leaves, Mapping):
        out = {}
        for branch, names in leaves.items():
            if not isinstance(branch, str):
                raise TypeError(f"leaves: branch names must be str, got {type(branch).__name__}")
            out[branch] = _check_leaf_names(names, f"leaves[{branch!r}]")
        return out
    return _check_leaf_names(leaves, "leaves")


def _leaves_for(leaves: LeafSpec, branch: str | None) -> tuple[str, ...]:
    if leaves is None:
        return DEFAULT_LEAVES
    if isinstance(leaves, Mapping):
        if branch is None:
            if len(leaves) == 1:
                return tuple(next(iter(leaves.values())))
            raise ValueError(
                f"expected branches {', '.join(leaves)} as 'name: EXPR; ...', found one bare "
                "expression"
            )
        if branch not in leaves:
            raise ValueError(f"unknown branch {clip(branch, 40)} (branches: {', '.join(leaves)})")
        return tuple(leaves[branch])
    return tuple(leaves)


def _parse_expr(text: str, offset: int, full: str, leaves, operators) -> Expr:
    return Expr(_Parser(text, offset, full, leaves, operators).parse_all())


def parse(
    text: str,
    leaves: LeafSpec = None,
    operators: OperatorSet | Sequence[str] | None = None,
) -> Expr | Loss:
    """Parse the text form into an :class:`Expr` (bare expression) or a :class:`Loss`.

    ``leaves``: the allowed leaf names, one sequence for every branch or a mapping
    ``{branch: leaves}`` (default ``yhat, y, 1``); the constant ``1`` is always allowed.
    Malformed text raises ``ValueError`` naming the position and what was expected.
    """
    if not isinstance(text, str):
        raise ValueError(f"expected formula text, got {type(text).__name__}")
    leaves = _check_leaf_spec(leaves)
    ops = get_operators(operators) if operators is not None else DEFAULT_OPERATORS
    if not text.strip():
        raise ValueError("position 0: expected an expression, found empty text")
    if ":" not in text:
        return _parse_expr(text, 0, text, _leaves_for(leaves, None), ops)
    branches = []
    pos = 0
    for part in text.split(";"):
        colon = part.find(":")
        if colon < 0:
            raise ValueError(f"position {pos}: expected 'branch: EXPR' in {clip(text, pos=pos)}")
        name = part[:colon].strip()
        if not _LEAF_NAME.match(name):
            raise ValueError(f"position {pos}: bad branch name {clip(name, 40)} in "
                             f"{clip(text, pos=pos)}")
        if any(n == name for n, _ in branches):
            raise ValueError(f"position {pos}: branch {name!r} given twice in "
                             f"{clip(text, pos=pos)}")
        body = part[colon + 1 :]
        branches.append(
            (name, _parse_expr(body, pos + colon + 1, text, _leaves_for(leaves, name), ops))
        )
        pos += len(part) + 1
    if isinstance(leaves, Mapping):
        missing = [b for b in leaves if b not in dict(branches)]
        if missing:
            raise ValueError(f"missing branch(es) {', '.join(missing)} in {clip(text)}")
    return Loss(branches)


_NAME_AND_NEXT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*([(:]?)")


def formula_leaves(formula: str, operators) -> tuple[str, ...]:
    """The leaf names of a formula in the text form, read from the text itself (names not
    followed by ``(`` or ``:``): parsing a stored formula then needs no task code."""
    out: dict[str, None] = {}
    for m in _NAME_AND_NEXT.finditer(formula):
        name, follow = m.groups()
        if not follow and name not in operators:
            out[name] = None
    return tuple(out) or ("y",)


# ---------------------------------------------------------------------------
# Normal form: value-preserving rewrites used only as a duplicate-detection key. The
# algebra of each operator (odd, even, idempotent, ...) is declared on it (ops.py); the
# rules that tie two particular built-in operators together (a Neg through Mul and Add,
# Mean_c inside Mean_nhw, the constant in Mul) are facts of neither alone and stay here.

_UNKNOWN = Operator("Unknown", 1, lambda x: x, "")
"""What the normal form knows of an operator that is not registered: no algebra."""


def _facts(name: str) -> Operator:
    """The registered operator ``name`` (its algebra), else :data:`_UNKNOWN`."""
    return registered(name) or _UNKNOWN


def normalize(node: Node) -> tuple[Node, str]:
    """Return (normal node, its text). Rules never change a value; see DESIGN.md."""
    if isinstance(node, str):
        return node, node
    op = node[0]
    if len(node) == 2:
        child, ckey = normalize(node[1])
        cop = None if isinstance(child, str) else child[0]
        f = _facts(op)
        if op == "Neg" and cop == "Neg":
            inner = child[1]
            return inner, node_text(inner)
        if cop == "Neg":
            inner = child[1]
            if f.parity == "odd":
                return _neg(normalize((op, inner)))
            if f.parity == "even":
                return normalize((op, inner))
            if f.negation_swap is not None:
                return _neg(normalize((f.negation_swap, inner)))
        if f.idempotent and cop == op:
            return child, ckey
        if f.parity == "even" and cop == "Abs":  # f(|x|) == f(x)
            return normalize((op, child[1]))
        if op == "Abs" and cop is not None and _facts(cop).nonnegative:
            return child, ckey
        if op == "Mean_c" and cop == "Mean_nhw":
            inner, ikey = normalize(("Mean_c", child[1]))
            return ("Mean_nhw", inner), f"Mean_nhw({ikey})"
        if child == CONSTANT and f.fixes_one:
            return CONSTANT, CONSTANT
        return (op, child), f"{op}({ckey})"
    if len(node) == 3:
        a, akey = normalize(node[1])
        b, bkey = normalize(node[2])
        a_neg = not isinstance(a, str) and a[0] == "Neg"
        b_neg = not isinstance(b, str) and b[0] == "Neg"
        if op == "Mul":
            if a_neg or b_neg:
                inner = ("Mul", a[1] if a_neg else a, b[1] if b_neg else b)
                res = normalize(inner)
                return res if (a_neg and b_neg) else _neg(res)
            if a == CONSTANT:
                return b, bkey
            if b == CONSTANT:
                return a, akey
        if op == "Add" and a_neg and b_neg:
            return _neg(normalize(("Add", a[1], b[1])))
        if bkey < akey and _facts(op).commutative:
            a, b, akey, bkey = b, a, bkey, akey
        return (op, a, b), f"{op}({akey}, {bkey})"
    children = [normalize(c) for c in node[1:]]
    return (op, *[c for c, _ in children]), f"{op}({', '.join(k for _, k in children)})"


def _neg(res: tuple[Node, str]) -> tuple[Node, str]:
    node, key = res
    if not isinstance(node, str) and node[0] == "Neg":
        return node[1], key[4:-1]
    return ("Neg", node), f"Neg({key})"


def normal_key(node: Node) -> str:
    return normalize(node)[1]
