"""The primitive operator table of the paper's Table 1, declared once.

Every operator is data: a name, an arity, a torch function, and the strings its
exporters need (LaTeX, sympy, standalone PyTorch source). Operators act on tensors
shaped (S, N, C, H, W): S independent samples (the rejection protocol batches its B
samples), each an (N, C, H, W) tensor as in the paper. A constant leaf is a
(1, 1, 1, 1, 1) tensor; every operator maps such a constant to a constant of the same
shape, so broadcasting never changes a value.

A user may build an ``OperatorSet`` with a subset of these operators or register
their own (:func:`make_operator`); registration checks that the function keeps the
shape, is differentiable, and has a unique, well-formed name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F

EPS = 1e-12
"""The paper's epsilon (Table 1)."""

_NAME = re.compile(r"^[A-Z][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Operator:
    """One primitive operator.

    ``fn`` takes ``arity`` tensors shaped (S, N, C, H, W) (or broadcastable constants)
    and returns one tensor of the broadcast shape. ``latex`` is a format string over
    the LaTeX of the arguments (``{0}``, ``{1}``); ``source`` the same over Python
    source using ``torch`` and the helper names of the exported file (see
    ``symbolic.py``); ``sympy`` maps sympy arguments to a sympy expression.
    """

    name: str
    arity: int
    fn: Callable[..., torch.Tensor]
    latex: str
    source: str
    sympy: Callable | None = None
    elementwise: bool = True

    def __call__(self, *args: torch.Tensor) -> torch.Tensor:
        return self.fn(*args)


# ---------------------------------------------------------------------------
# Semantics (DESIGN.md "Semantics"). Dims: 0 = sample, 1 = n, 2 = c, 3 = h, 4 = w.


def _is_constant(x: torch.Tensor) -> bool:
    return x.numel() == 1


def _inv(x):
    return 1.0 / (x + EPS)


def _log(x):
    return torch.sign(x) * torch.log(torch.abs(x) + EPS)


def _sqrt(x):
    return torch.sign(x) * torch.sqrt(torch.abs(x) + EPS)


def _mean_nhw(x):
    if _is_constant(x):
        return x
    return x.mean(dim=(1, 3, 4), keepdim=True).expand_as(x)


def _mean_c(x):
    if _is_constant(x):
        return x
    return x.mean(dim=2, keepdim=True).expand_as(x)


def _max_pool(x):
    if _is_constant(x):
        return x
    s, n, c, h, w = x.shape
    # max_pool2d pads with -inf: padding never wins the max.
    return F.max_pool2d(x.reshape(s * n, c, h, w), 3, stride=1, padding=1).reshape(x.shape)


def _min_pool(x):
    if _is_constant(x):
        return x
    s, n, c, h, w = x.shape
    return -F.max_pool2d(-x.reshape(s * n, c, h, w), 3, stride=1, padding=1).reshape(x.shape)


def _sympy_table():
    """sympy builders, imported lazily (sympy is slow to import)."""
    import sympy as sp

    # Log and Sqrt are the sign-protected sign(a) * log(|a| + eps) and sign(a) *
    # sqrt(|a| + eps): written out, each refers to its argument twice, so nested ones
    # grow exponentially (a chain of 12 Log took seconds). They stay named functions,
    # ``slog`` and ``ssqrt``, as in the LaTeX.
    def sign_log(a):
        return sp.Function("slog")(a)

    def sign_sqrt(a):
        return sp.Function("ssqrt")(a)

    def fn(name):
        return sp.Function(name)

    return {
        "Add": lambda a, b: a + b,
        "Mul": lambda a, b: a * b,
        "Neg": lambda a: -a,
        "Abs": lambda a: sp.Abs(a),
        "Inv": lambda a: 1 / (a + sp.Symbol("epsilon", positive=True)),
        "Log": sign_log,
        "Exp": lambda a: sp.exp(a),
        "Tanh": lambda a: sp.tanh(a),
        "Square": lambda a: a**2,
        "Sqrt": sign_sqrt,
        "Mean_nhw": lambda a: fn("Mean_nhw")(a),
        "Mean_c": lambda a: fn("Mean_c")(a),
        "MaxPool3x3": lambda a: fn("MaxPool3x3")(a),
        "MinPool3x3": lambda a: fn("MinPool3x3")(a),
    }


def _builtin() -> list[Operator]:
    def op(name, arity, fn, latex, source, elementwise=True):
        return Operator(name, arity, fn, latex, source, None, elementwise)

    return [
        op("Add", 2, torch.add, r"\left({0} + {1}\right)", "({0} + {1})"),
        op("Mul", 2, torch.mul, r"{0} \cdot {1}", "({0} * {1})"),
        op("Neg", 1, torch.neg, r"\left(-{0}\right)", "(-{0})"),
        op("Abs", 1, torch.abs, r"\left|{0}\right|", "torch.abs({0})"),
        op("Inv", 1, _inv, r"\frac{{1}}{{{0} + \epsilon}}", "inv({0})"),
        op("Log", 1, _log, r"\operatorname{{slog}}\left({0}\right)", "slog({0})"),
        op("Exp", 1, torch.exp, r"e^{{{0}}}", "torch.exp({0})"),
        op("Tanh", 1, torch.tanh, r"\tanh\left({0}\right)", "torch.tanh({0})"),
        op("Square", 1, torch.square, r"\left({0}\right)^{{2}}", "torch.square({0})"),
        op("Sqrt", 1, _sqrt, r"\operatorname{{ssqrt}}\left({0}\right)", "ssqrt({0})"),
        op("Mean_nhw", 1, _mean_nhw, r"\operatorname{{Mean}}_{{nhw}}\left({0}\right)",
           "mean_nhw({0})", elementwise=False),
        op("Mean_c", 1, _mean_c, r"\operatorname{{Mean}}_{{c}}\left({0}\right)",
           "mean_c({0})", elementwise=False),
        op("MaxPool3x3", 1, _max_pool, r"\operatorname{{MaxPool}}_{{3\times3}}\left({0}\right)",
           "max_pool({0})", elementwise=False),
        op("MinPool3x3", 1, _min_pool, r"\operatorname{{MinPool}}_{{3\times3}}\left({0}\right)",
           "min_pool({0})", elementwise=False),
    ]


# ---------------------------------------------------------------------------


def validate_operator(op: Operator) -> None:
    """Raise ValueError unless ``op`` is well formed, keeps the shape and has gradients."""
    if not isinstance(op.name, str) or not _NAME.match(op.name):
        raise ValueError(
            f"operator name {op.name!r} must start with an upper-case letter and "
            "hold only letters, digits and '_'"
        )
    if op.arity not in (1, 2):
        raise ValueError(f"operator {op.name}: arity must be 1 or 2, got {op.arity!r}")
    try:
        op.latex.format(*(["a"] * op.arity))
        op.source.format(*(["a"] * op.arity))
    except (IndexError, KeyError, ValueError, AttributeError) as exc:
        raise ValueError(f"operator {op.name}: bad latex/source template ({exc})") from None
    gen = torch.Generator().manual_seed(0)
    shape = (2, 2, 3, 4, 5)
    args = [
        (torch.rand(shape, generator=gen, dtype=torch.float64) + 0.5).requires_grad_(True)
        for _ in range(op.arity)
    ]
    try:
        out = op.fn(*args)
    except Exception as exc:  # noqa: BLE001 - report any failure of user code
        raise ValueError(f"operator {op.name}: failed on a probe tensor ({exc})") from None
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != shape:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"operator {op.name}: must keep the shape {shape}, got {got}")
    try:
        grads = torch.autograd.grad(out.sum(), args, allow_unused=True)
    except RuntimeError:
        grads = (None,)
    if any(g is None for g in grads):
        raise ValueError(f"operator {op.name}: output is not differentiable in every input")
    const = torch.ones((1, 1, 1, 1, 1), dtype=torch.float64)
    cout = op.fn(*([const] * op.arity))
    if cout.numel() != 1:
        raise ValueError(f"operator {op.name}: must map a constant (1,1,1,1,1) to a constant")


def make_operator(
    name: str,
    arity: int,
    fn: Callable[..., torch.Tensor],
    latex: str | None = None,
    source: str | None = None,
    elementwise: bool = True,
    sympy: Callable | None = None,
) -> Operator:
    """Build and validate a user operator.

    ``latex`` defaults to ``\\operatorname{Name}(...)``. ``source`` is the Python
    source used by the standalone export; without it the export of a loss that uses
    this operator raises a clear error.
    """
    args = ", ".join("{%d}" % i for i in range(arity)) if arity in (1, 2) else ""
    if latex is None:
        latex = r"\operatorname{{%s}}\left(%s\right)" % (name, args)
    if source is None:
        source = "__missing_source__"
    op = Operator(name, arity, fn, latex, source, sympy, elementwise)
    validate_operator(op)
    return op


class OperatorSet(Mapping):
    """An ordered, validated set of operators, looked up by name.

    The set used by a search is recorded (by names) in its study; user operators must
    be registered in an importable module so that workers can rebuild the set.
    """

    def __init__(self, operators: Iterable[Operator]):
        ops: dict[str, Operator] = {}
        for op in operators:
            if op.name in ops:
                raise ValueError(f"operator {op.name} declared twice")
            ops[op.name] = op
        if not ops:
            raise ValueError("an operator set needs at least one operator")
        self._ops = ops
        self.names: tuple[str, ...] = tuple(ops)
        self.unary: tuple[str, ...] = tuple(n for n, o in ops.items() if o.arity == 1)
        self.binary: tuple[str, ...] = tuple(n for n, o in ops.items() if o.arity == 2)
        self.arity: dict[str, int] = {n: o.arity for n, o in ops.items()}

    def __getitem__(self, name: str) -> Operator:
        return self._ops[name]

    def __iter__(self):
        return iter(self._ops)

    def __len__(self) -> int:
        return len(self._ops)

    def __repr__(self) -> str:
        return f"OperatorSet({', '.join(self.names)})"

    def subset(self, names: Iterable[str]) -> OperatorSet:
        names = list(names)
        unknown = [n for n in names if n not in self._ops]
        if unknown:
            raise ValueError(
                f"unknown operator(s) {', '.join(unknown)}; known: {', '.join(self.names)}"
            )
        return OperatorSet(self._ops[n] for n in names)

    def with_operator(self, op: Operator) -> OperatorSet:
        validate_operator(op)
        return OperatorSet([*self._ops.values(), op])


_REGISTRY: dict[str, Operator] = {op.name: op for op in _builtin()}
DEFAULT_NAMES: tuple[str, ...] = tuple(_REGISTRY)
DEFAULT_OPERATORS = OperatorSet(_REGISTRY.values())


def register_operator(op: Operator) -> Operator:
    """Add a validated user operator to the registry used by :func:`get_operators`.

    Call it at import time of a module named in the search config's
    ``operator_modules`` so that every worker registers it too.
    """
    validate_operator(op)
    existing = _REGISTRY.get(op.name)
    if existing is not None and existing is not op:
        if op.name in DEFAULT_NAMES:
            raise ValueError(f"operator {op.name} is built in and cannot be replaced")
        raise ValueError(f"operator {op.name} is already registered")
    _REGISTRY[op.name] = op
    return op


def get_operators(names: Iterable[str] | OperatorSet | None = None) -> OperatorSet:
    """The operator set with these names (default: the paper's 14 operators)."""
    if names is None:
        return DEFAULT_OPERATORS
    if isinstance(names, OperatorSet):
        return names
    if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
        raise TypeError(
            f"operators: expected a sequence of operator names, got {type(names).__name__}"
        )
    names = list(names)
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        raise TypeError(f"operators: names must be str, got {type(bad[0]).__name__} {bad[0]!r:.40}")
    if names == list(DEFAULT_NAMES):
        return DEFAULT_OPERATORS
    unknown = [n for n in names if n not in _REGISTRY]
    if unknown:
        shown = ", ".join(repr(n)[:40] for n in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        raise ValueError(f"unknown operator(s) {shown}; known: {', '.join(_REGISTRY)}")
    return OperatorSet(_REGISTRY[n] for n in names)


def sympy_builder(op: Operator):
    """The sympy function of an operator: its own, the built-in one, or an undefined one."""
    if op.sympy is not None:
        return op.sympy
    table = _sympy_table()
    if op.name in table:
        return table[op.name]
    import sympy as sp

    return lambda *a: sp.Function(op.name)(*a)
