"""The primitive operators of the paper's Table 1, each declared once.

Every fact about an operator lives on its :class:`Operator`: the torch function the
search runs, its algebra (commutative, odd or even, idempotent, ... : the normal form's
rewrites), its LaTeX template and precedence, its sympy builder, and the Python source
of the standalone export together with the helper functions that source calls. A
helper is exported as its own source text (``inspect.getsource``): the exported file
runs the very functions the search runs, so adding an operator, built-in or a user's,
is one declaration.

Operators act on tensors shaped (S, N, C, H, W): S independent samples (the rejection
protocol batches its B samples), each an (N, C, H, W) tensor as in the paper; the
exported file calls the same functions on (N, C, H, W) tensors. Helpers therefore index
dims from the end (N = -4, C = -3, H = -2, W = -1), and may use only ``torch``, ``F``
(``torch.nn.functional``) and ``EPS``, which the exported file defines. A constant leaf
is a (1, 1, 1, 1, 1) tensor; every operator maps such a constant to a constant of the
same shape, so broadcasting never changes a value.

A user may build an ``OperatorSet`` with a subset of these operators or register
their own (:func:`make_operator`); registration checks that the function keeps the
shape, is differentiable, and has a unique, well-formed name.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F

EPS = 1e-12
"""The paper's epsilon (Table 1)."""

ATOM, PRODUCT, SUM = 3, 2, 1
"""LaTeX precedence levels: a child whose precedence is below what its parent's template
needs (``Operator.operand_precedence``) is bracketed."""

_NAME = re.compile(r"^[A-Z][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Operator:
    """One primitive operator and every fact about it.

    ``fn`` takes ``arity`` tensors shaped (S, N, C, H, W) (or broadcastable constants)
    and returns one tensor of the broadcast shape. ``latex`` is a format string over
    the LaTeX of the arguments (``{0}``, ``{1}``) whose result has precedence
    ``precedence``; an argument below ``operand_precedence`` is bracketed (0: never, the
    template brackets its arguments itself). ``source`` is the same over Python source
    (None: the operator cannot be exported); it may call ``torch``, ``F`` and the
    ``helpers``, functions exported as their own source text. ``sympy`` maps sympy
    arguments to a sympy expression (None: an undefined function named like the
    operator).

    The algebra below is what the normal form (``tree.normalize``) may use; each fact
    must hold exactly, for every input: ``commutative`` f(a, b) = f(b, a); ``parity``
    ``odd`` f(-x) = -f(x) or ``even`` f(-x) = f(x) = f(|x|); ``idempotent`` f(f(x)) =
    f(x); ``nonnegative`` f(x) >= 0; ``fixes_one`` f(1) = 1; ``negation_swap`` names
    g with f(-x) = -g(x).
    """

    name: str
    arity: int
    fn: Callable[..., torch.Tensor]
    latex: str
    source: str | None = None
    sympy: Callable | None = None
    elementwise: bool = True
    commutative: bool = False
    precedence: int = ATOM
    operand_precedence: int = 0
    helpers: tuple[Callable, ...] = ()
    parity: str | None = None
    idempotent: bool = False
    nonnegative: bool = False
    fixes_one: bool = False
    negation_swap: str | None = None
    region: bool = False
    """Aggregates over the batch and the positions (``Mean_nhw``): applied to a term of
    the prediction and the target, it makes a region-level term (see
    ``mutate.has_region_term``)."""

    def __call__(self, *args: torch.Tensor) -> torch.Tensor:
        return self.fn(*args)

    def to_sympy(self, *args):
        """The sympy expression of this operator applied to sympy ``args``."""
        if self.sympy is not None:
            return self.sympy(*args)
        import sympy as sp

        return sp.Function(self.name)(*args)

    def helper_sources(self) -> list[str]:
        """The source text of each helper function, as the exported file defines it."""
        return [inspect.getsource(h).strip("\n") for h in self.helpers]


# ---------------------------------------------------------------------------
# Semantics (DESIGN.md "Semantics"). These functions are the search's operators and,
# as their source text, the exported file's helpers: dims from the end, only torch, F
# and EPS.


def inv(x):
    return 1.0 / (x + EPS)


def slog(x):
    return torch.sign(x) * torch.log(torch.abs(x) + EPS)


def ssqrt(x):
    return torch.sign(x) * torch.sqrt(torch.abs(x) + EPS)


def mean_nhw(x):
    if x.numel() == 1:
        return x
    return x.mean(dim=(-4, -2, -1), keepdim=True).expand_as(x)


def mean_c(x):
    if x.numel() == 1:
        return x
    return x.mean(dim=-3, keepdim=True).expand_as(x)


def max_pool(x):
    if x.numel() == 1:
        return x
    # max_pool2d pads with -inf: padding never wins the max.
    return F.max_pool2d(x.reshape(-1, *x.shape[-3:]), 3, stride=1, padding=1).reshape(x.shape)


def min_pool(x):
    if x.numel() == 1:
        return x
    return -F.max_pool2d(-x.reshape(-1, *x.shape[-3:]), 3, stride=1, padding=1).reshape(x.shape)


def _sp():
    """sympy, imported when a sympy expression is first asked for (it is slow to import).

    Log and Sqrt are the sign-protected sign(a) * log(|a| + eps) and sign(a) *
    sqrt(|a| + eps): written out, each refers to its argument twice, so nested ones would
    grow exponentially (a chain of 12 Log took seconds). They stay named functions,
    ``slog`` and ``ssqrt``, as in the LaTeX."""
    import sympy

    return sympy


def _epsilon():
    return _sp().Symbol("epsilon", positive=True)


def _builtin() -> list[Operator]:
    def helper(name, fn, latex, **facts):
        """An operator whose exported source calls ``fn`` itself."""
        return Operator(name, 1, fn, latex, f"{fn.__name__}({{0}})", helpers=(fn,), **facts)

    return [
        Operator("Add", 2, torch.add, "{0} + {1}", "({0} + {1})", lambda a, b: a + b,
                 commutative=True, precedence=SUM, operand_precedence=SUM),
        Operator("Mul", 2, torch.mul, r"{0} \cdot {1}", "({0} * {1})", lambda a, b: a * b,
                 commutative=True, precedence=PRODUCT, operand_precedence=PRODUCT),
        Operator("Neg", 1, torch.neg, "-{0}", "(-{0})", lambda a: -a,
                 precedence=SUM, operand_precedence=PRODUCT),
        Operator("Abs", 1, torch.abs, r"\left|{0}\right|", "torch.abs({0})",
                 lambda a: _sp().Abs(a), parity="even", idempotent=True, nonnegative=True,
                 fixes_one=True),
        helper("Inv", inv, r"\frac{{1}}{{{0} + \epsilon}}",
               sympy=lambda a: 1 / (a + _epsilon())),
        helper("Log", slog, r"\operatorname{{slog}}\left({0}\right)", parity="odd",
               sympy=lambda a: _sp().Function("slog")(a)),
        Operator("Exp", 1, torch.exp, r"e^{{{0}}}", "torch.exp({0})", lambda a: _sp().exp(a),
                 nonnegative=True),
        Operator("Tanh", 1, torch.tanh, r"\tanh\left({0}\right)", "torch.tanh({0})",
                 lambda a: _sp().tanh(a), parity="odd"),
        Operator("Square", 1, torch.square, "{0}^{{2}}", "torch.square({0})", lambda a: a**2,
                 parity="even", nonnegative=True, fixes_one=True, operand_precedence=ATOM),
        helper("Sqrt", ssqrt, r"\operatorname{{ssqrt}}\left({0}\right)", parity="odd",
               sympy=lambda a: _sp().Function("ssqrt")(a)),
        helper("Mean_nhw", mean_nhw, r"\operatorname{{Mean}}_{{nhw}}\left({0}\right)",
               elementwise=False, parity="odd", idempotent=True, fixes_one=True,
               region=True),
        helper("Mean_c", mean_c, r"\operatorname{{Mean}}_{{c}}\left({0}\right)",
               elementwise=False, parity="odd", idempotent=True, fixes_one=True),
        helper("MaxPool3x3", max_pool, r"\operatorname{{MaxPool}}_{{3\times3}}\left({0}\right)",
               elementwise=False, fixes_one=True, negation_swap="MinPool3x3"),
        helper("MinPool3x3", min_pool, r"\operatorname{{MinPool}}_{{3\times3}}\left({0}\right)",
               elementwise=False, fixes_one=True, negation_swap="MaxPool3x3"),
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
        if op.source is not None:
            op.source.format(*(["a"] * op.arity))
    except (IndexError, KeyError, ValueError, AttributeError) as exc:
        raise ValueError(f"operator {op.name}: bad latex/source template ({exc})") from None
    if op.parity not in (None, "odd", "even"):
        raise ValueError(f"operator {op.name}: parity must be 'odd', 'even' or None")
    for h in op.helpers:
        if getattr(h, "__name__", "<lambda>") == "<lambda>":
            raise ValueError(f"operator {op.name}: a helper must be a named function")
        try:
            inspect.getsource(h)
        except (OSError, TypeError):
            raise ValueError(f"operator {op.name}: the source of helper {h.__name__} "
                             "cannot be read (define it in a .py file)") from None
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
    commutative: bool = False,
    helpers: Iterable[Callable] | None = None,
    region: bool = False,
) -> Operator:
    """Build and validate a user operator.

    ``latex`` defaults to ``\\operatorname{Name}(...)``. ``source`` is the Python
    source of the standalone export, a template over the arguments' source; when ``fn``
    is a named function (not a lambda) it defaults to a call of ``fn``, exported as its
    own source text (so ``fn`` may use only ``torch``, ``F`` and ``EPS``, and index
    dims from the end, as the built-in helpers do). Without either, the export of a loss
    that uses this operator raises a clear error. ``helpers`` are further functions the
    source calls, exported the same way. ``commutative`` (binary operators) lets the
    normal form treat ``Op(a, b)`` and ``Op(b, a)`` as one loss. ``region``: the
    operator aggregates over the batch and the positions, as ``Mean_nhw`` does.
    """
    args = ", ".join("{%d}" % i for i in range(arity)) if arity in (1, 2) else ""
    if latex is None:
        latex = r"\operatorname{{%s}}\left(%s\right)" % (name, args)
    helpers = tuple(helpers or ())
    if source is None and getattr(fn, "__name__", "<lambda>") != "<lambda>" and _readable(fn):
        source = f"{fn.__name__}({args})"
        helpers = (fn, *helpers)
    op = Operator(name, arity, fn, latex, source, sympy, elementwise, commutative,
                  helpers=helpers, region=region)
    validate_operator(op)
    return op


def _readable(fn: Callable) -> bool:
    try:
        inspect.getsource(fn)
    except (OSError, TypeError):
        return False
    return True


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


def import_operator_modules(modules: Iterable[str]) -> None:
    """Import the modules that register user operators (see :func:`register_operator`);
    a module that fails to import is a :class:`ConfigError` naming it."""
    from ..errors import ConfigError, describe

    for mod in modules:
        try:
            importlib.import_module(mod)
        except Exception as exc:  # noqa: BLE001 - any failure of user code is a user error
            raise ConfigError(f"operator_modules: cannot import {mod!r:.80}: "
                              f"{describe(exc, 200)}") from None


def get_operators(names: Iterable[str] | OperatorSet | None = None,
                  modules: Iterable[str] = ()) -> OperatorSet:
    """The operator set with these names (default: the paper's 14 operators), after
    importing ``modules`` (a search config's ``operator_modules``), which register the
    user operators among them."""
    import_operator_modules(modules)
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


def all_operators(modules: Iterable[str] = ()) -> OperatorSet:
    """Every registered operator (the paper's 14 first, then the users'), after importing
    ``modules``: the set a formula is read with when it may use a user's operator."""
    import_operator_modules(modules)
    return OperatorSet(_REGISTRY.values())


def registered(name: str) -> Operator | None:
    """The registered operator ``name`` (built-in or a user's), or None."""
    return _REGISTRY.get(name)
