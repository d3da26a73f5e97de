"""The symbolic side: sympy expressions, readable LaTeX, and standalone PyTorch source.

One hub per export target (like PySR): LaTeX is written from the operator table's
templates so that the formula reads like the tree (as in the paper's Appendix B);
``to_sympy`` gives a sympy expression for simplification; ``to_python`` writes a file
that needs only torch and computes the same values as ``to_module()``.
"""

from __future__ import annotations

import inspect
import keyword
import re
from collections.abc import Sequence

from ..textutil import clip, docstring_text
from .compile import nchw, reduce_loss
from .ops import ATOM, EPS, PRODUCT, SUM, OperatorSet, get_operators, registered
from .tree import CONSTANT, SINGLE_BRANCH, Expr, Loss, Node, _walk, as_loss

_GREEK_HAT = {"yhat": r"\hat{y}"}


def leaf_latex(name: str) -> str:
    if name in _GREEK_HAT:
        return _GREEK_HAT[name]
    if len(name) == 1:
        return name
    return r"\mathrm{%s}" % name.replace("_", r"\_")


def _latex_prec(node: Node, ops: OperatorSet) -> tuple[str, int]:
    """LaTeX with brackets only where precedence needs them (each operator's template and
    precedences, see ``Operator``)."""
    if isinstance(node, str):
        return leaf_latex(node), ATOM
    name = node[0]
    if _is_subtraction(node, ops):
        a, _ = _latex_prec(node[1], ops)
        b, p = _latex_prec(node[2][1], ops)
        return f"{a} - " + (rf"\left({b}\right)" if p < PRODUCT else b), SUM
    op = ops[name]
    args = []
    for c in node[1:]:
        tex, p = _latex_prec(c, ops)
        args.append(rf"\left({tex}\right)" if p < op.operand_precedence else tex)
    return op.latex.format(*args), op.precedence


def _is_subtraction(node: Node, ops: OperatorSet) -> bool:
    """``Add(a, Neg(b))`` of the built-in Add and Neg, written ``a - b``: a rule about two
    operators together, so it lives here rather than on either one."""
    return (node[0] == "Add" and not isinstance(node[2], str) and node[2][0] == "Neg"
            and ops["Add"] is registered("Add") and ops["Neg"] is registered("Neg"))


def _latex(node: Node, ops: OperatorSet) -> str:
    return _latex_prec(node, ops)[0]


def _branch_symbol(name: str) -> str:
    return r"\mathcal{L}_{\mathrm{%s}}" % name.replace("_", r"\_")


def to_latex(x: Expr | Loss, operators: OperatorSet | Sequence[str] | None = None) -> str:
    """LaTeX of the expression (per element; the loss is its mean as in Eq. (2)).

    A multi-branch loss gives one ``\\mathcal{L}_{branch} = ...`` per branch, joined by
    ``,\\quad``. ``slog``/``ssqrt`` are the sign-protected log and square root.
    """
    ops = get_operators(operators)
    if isinstance(x, Expr):
        return _latex(x.node, ops)
    if len(x.branches) == 1 and x.branches[0][0] == SINGLE_BRANCH:
        return _latex(x.branches[0][1].node, ops)
    return r",\quad ".join(f"{_branch_symbol(n)} = {_latex(e.node, ops)}" for n, e in x.branches)


def to_sympy(x: Expr | Loss, operators: OperatorSet | Sequence[str] | None = None):
    """A sympy expression; a multi-branch loss gives the sum of its branches.

    It mirrors the tree and is built unevaluated, in time linear in the tree's size
    (sympy's automatic evaluation took seconds on some chains of 100 operators); call
    ``.doit()`` or ``sympy.simplify`` on it to evaluate or simplify.
    """
    import sympy as sp

    ops = get_operators(operators)
    symbols: dict[str, object] = {}

    def conv(node: Node):
        if isinstance(node, str):
            if node == CONSTANT:
                return sp.Integer(1)
            if node not in symbols:
                symbols[node] = sp.Symbol(r"\hat{y}" if node == "yhat" else node, real=True)
            return symbols[node]
        return ops[node[0]].to_sympy(*[conv(c) for c in node[1:]])

    with sp.evaluate(False):
        if isinstance(x, Expr):
            return conv(x.node)
        return sp.Add(*[conv(e.node) for _, e in x.branches])


# ---------------------------------------------------------------------------
# Standalone PyTorch source

EXPORT_NAMES = frozenset({"torch", "F", "nn", "EPS", "nchw", "reduce_loss", "one", "self",
                          "inputs", "leaves", "o", "ref"})
"""Names the exported file defines besides the operators' helpers."""


def reserved_names(ops: OperatorSet) -> frozenset[str]:
    """Every name the exported file defines: a leaf may not take one."""
    return EXPORT_NAMES | {h.__name__ for op in ops.values() for h in op.helpers}


_RESERVED = reserved_names(get_operators())


_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def py_name(leaf: str, reserved: frozenset[str] = _RESERVED) -> str:
    """A Python variable name for a leaf that cannot clash with the helpers."""
    if not isinstance(leaf, str) or not _IDENTIFIER.match(leaf):
        raise ValueError(f"leaf {clip(leaf, 40)} is not a valid name for generated source")
    if leaf in reserved or keyword.iskeyword(leaf):
        return f"{leaf}_"
    return leaf


def helpers_source(ops: OperatorSet) -> str:
    """The exported file's definitions: ``EPS``, the operators' helpers (their own source
    text, the functions the search runs), ``nchw`` and ``reduce_loss`` (Eq. (2), as
    ``to_module`` computes it)."""
    parts, seen = [f"EPS = {EPS!r}"], set()
    for op in ops.values():
        for h, text in zip(op.helpers, op.helper_sources()):
            if h.__name__ not in seen:
                seen.add(h.__name__)
                parts.append(text)
    for fn in (nchw, reduce_loss):
        parts.append(inspect.getsource(fn).strip("\n"))
    return "\n\n\n".join(parts)


def _source(node: Node, ops: OperatorSet, reserved: frozenset[str]) -> str:
    if isinstance(node, str):
        return "one" if node == CONSTANT else py_name(node, reserved)
    if node[0] not in ops:
        raise ValueError(f"operator {clip(node[0], 40)} is not in the operator set")
    op = ops[node[0]]
    if op.source is None:
        raise ValueError(f"operator {op.name} has no Python source: make it from a named "
                         "function, or pass source= when making it")
    return op.source.format(*[_source(c, ops, reserved) for c in node[1:]])


def branch_function_source(name: str, expr: Expr, ops: OperatorSet) -> str:
    """``def branch_<name>(leaves...)`` returning Eq. (2) for (N, C, H, W)-like inputs."""
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise ValueError(f"branch name {clip(name, 40)} is not a valid name for generated source")
    reserved = reserved_names(ops)
    leaves = sorted(expr.leaves - {CONSTANT})
    lines = [f"def branch_{name}(leaves):", f'    """{name}: {docstring_text(str(expr))}"""']
    for v in leaves:
        lines.append(f"    {py_name(v, reserved)} = nchw(leaves[{v!r}])")
    ref = py_name(leaves[0], reserved) if leaves else "ref"
    if not leaves:
        lines.append("    ref = nchw(next(iter(leaves.values())))")
    if CONSTANT in expr.leaves:
        lines.append(f"    one = torch.ones((1, 1, 1, 1), dtype={ref}.dtype, device={ref}.device)")
    lines.append(f"    o = {_source(expr.node, ops, reserved)}")
    lines.append(f"    return reduce_loss(o, {ref})")
    return "\n".join(lines)


def _sum_branches(loss: Loss, inputs: str = "inputs") -> str:
    return " + ".join(f"branch_{n}({inputs}[{n!r}])" for n, _ in loss.branches)


def to_python(
    x: Expr | Loss,
    operators: OperatorSet | Sequence[str] | None = None,
    class_name: str = "SearchedLoss",
    header: str = "",
    transform: tuple[str, str] | None = None,
) -> str:
    """Source of a standalone module (torch only) computing the same values as ``to_module``.

    By default ``forward`` takes the leaf tensors: ``forward(yhat, y)`` for a
    single-branch loss, ``forward(inputs)`` with ``{branch: {leaf: tensor}}`` otherwise.
    A task passes ``transform = (signature, source)``, where ``source`` defines
    ``branch_inputs(<signature>)`` returning ``{branch: {leaf: tensor}}``: ``forward``
    then takes the task's raw outputs and targets (branch transforms included).
    """
    ops = get_operators(operators)
    loss = as_loss(x)
    if not isinstance(class_name, str) or not _IDENTIFIER.match(class_name) or \
            keyword.iskeyword(class_name):
        raise ValueError(f"class_name {clip(class_name, 40)} is not a Python identifier")
    for _, e in loss.branches:  # every name that becomes code is checked (never pasted raw)
        for n in _walk(e.node):
            if isinstance(n, str) and n != CONSTANT:
                py_name(n)
    funcs = [branch_function_source(n, e, ops) for n, e in loss.branches]
    extra = ""
    if transform is not None:
        sig, extra = transform
        forward = (
            f"    def forward(self, {sig}):\n"
            f"        inputs = branch_inputs({sig})\n"
            f"        return {_sum_branches(loss)}\n"
        )
    elif len(loss.branches) == 1:
        name, e = loss.branches[0]
        leaves = sorted(e.leaves - {CONSTANT})
        if set(leaves) <= {"yhat", "y"}:
            leaves = ["yhat", "y"]
        reserved = reserved_names(ops)
        sig = ", ".join(py_name(v, reserved) for v in leaves) or "ref"
        call = ", ".join(f"{v!r}: {py_name(v, reserved)}" for v in leaves) or "'ref': ref"
        forward = f"    def forward(self, {sig}):\n        return branch_{name}({{{call}}})\n"
    else:
        forward = (
            "    def forward(self, inputs):\n"
            '        """inputs: {branch: {leaf: tensor}}."""\n'
            f"        return {_sum_branches(loss)}\n"
        )
    doc = header or f"Loss function exported by autoloss-zero.\n\nFormula: {loss}"
    parts = [
        f'"""{docstring_text(doc)}\n\nStandalone: needs only torch."""',
        "import torch\nimport torch.nn.functional as F\nfrom torch import nn",
        helpers_source(ops),
        *funcs,
    ]
    if extra:
        parts.append(extra.strip("\n"))
    parts.append(
        f"class {class_name}(nn.Module):\n"
        f'    """{docstring_text(str(loss))}"""\n\n'
        f"    formula = {str(loss)!r}\n\n" + forward
    )
    return "\n\n\n".join(parts)
