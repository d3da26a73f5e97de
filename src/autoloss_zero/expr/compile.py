"""Compilation of expressions to PyTorch: closures (hot path) and ``nn.Module`` wrappers.

Inside, every tensor is shaped (S, N, C, H, W): S independent samples, each the
paper's (N, C, H, W). :meth:`CompiledLoss.per_sample` returns the S loss values of
Eq. (2), ``sum(o) / (N*H*W)`` per sample (:func:`reduce_loss`, which the standalone
export also defines as its own source text), so one backward pass over their sum gives
each sample's gradient. The modules take ordinary (N, C, H, W) or (N, C) tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from .ops import OperatorSet, get_operators
from .tree import CONSTANT, Expr, Loss, Node, as_loss

Env = Mapping[str, torch.Tensor]


def _compile_node(node: Node, ops: OperatorSet) -> Callable[[Env], torch.Tensor]:
    if isinstance(node, str):
        return lambda env: env[node]
    fn = ops[node[0]].fn
    children = [_compile_node(c, ops) for c in node[1:]]
    if len(children) == 1:
        (a,) = children
        return lambda env: fn(a(env))
    if len(children) == 2:
        a, b = children
        return lambda env: fn(a(env), b(env))
    return lambda env: fn(*[c(env) for c in children])


def to_sampled(x: torch.Tensor) -> torch.Tensor:
    """(S, N[, C[, H[, W]]]) -> (S, N, C, H, W), missing dims of size 1 (views only)."""
    d = x.dim()
    if d == 5:
        return x
    if d == 4:
        return x[..., None]
    if d == 3:
        return x[..., None, None]
    if d == 2:
        return x[:, :, None, None, None]
    raise ValueError(f"expected a (S, N, ...) tensor with 2 to 5 dims, got shape {tuple(x.shape)}")


def nchw(x):
    """(N,), (N, C), (N, C, L) or (N, C, H, W) -> (N, C, H, W)."""
    while x.dim() < 4:
        x = x.unsqueeze(-1)
    return x


def reduce_loss(o, ref):
    """Eq. (2): sum over n, c, h, w divided by N*H*W (per sample if a leading S dim)."""
    o = o.expand(ref.shape)
    return o.sum(dim=(-4, -3, -2, -1)) / (ref.shape[-4] * ref.shape[-2] * ref.shape[-1])


def to_single(x: torch.Tensor) -> torch.Tensor:
    """(N[, C[, H[, W]]]) -> (1, N, C, H, W)."""
    if x.dim() > 4 or x.dim() == 0:
        raise ValueError(f"expected an (N, C, H, W) or (N, C) tensor, got shape {tuple(x.shape)}")
    return nchw(x).unsqueeze(0)


_CONST_CACHE: dict = {}


def _constant(like: torch.Tensor) -> torch.Tensor:
    key = (like.dtype, like.device)
    c = _CONST_CACHE.get(key)
    if c is None:
        c = torch.ones((1, 1, 1, 1, 1), dtype=like.dtype, device=like.device)
        _CONST_CACHE[key] = c
    return c


class CompiledExpr:
    """One branch, compiled once; call :meth:`per_sample` on (S, N, C, H, W) leaves."""

    __slots__ = ("expr", "fn", "leaf_names")

    def __init__(self, expr: Expr, operators: OperatorSet | Sequence[str] | None = None):
        ops = get_operators(operators)
        missing = expr.operators - set(ops.names)
        if missing:
            raise ValueError(f"operator(s) {', '.join(sorted(missing))} not in the operator set")
        self.expr = expr
        self.fn = _compile_node(expr.node, ops)
        self.leaf_names = tuple(sorted(expr.leaves - {CONSTANT}))

    def per_sample(self, leaves: Env) -> torch.Tensor:
        """Eq. (2) for each of the S samples: a tensor of shape (S,)."""
        ref = None
        env = {}
        for name in self.leaf_names:
            t = to_sampled(leaves[name])
            env[name] = t
            ref = t
        if ref is None:  # constant-only expression: take the shape from any input
            ref = to_sampled(next(iter(leaves.values())))
        env[CONSTANT] = _constant(ref)
        return reduce_loss(self.fn(env), ref)


class CompiledLoss:
    """All branches of a loss; ``per_sample`` sums the branches per sample."""

    __slots__ = ("loss", "parts")

    def __init__(self, loss: Loss | Expr, operators: OperatorSet | Sequence[str] | None = None):
        self.loss = as_loss(loss)
        self.parts = [(name, CompiledExpr(e, operators)) for name, e in self.loss.branches]

    def per_sample(self, inputs: Mapping[str, Env]) -> torch.Tensor:
        total = None
        for name, part in self.parts:
            v = part.per_sample(inputs[name])
            total = v if total is None else total + v
        return total

    def __call__(self, inputs: Mapping[str, Env]) -> torch.Tensor:
        """The loss of one (N, C, H, W) batch per branch leaf: a scalar tensor."""
        single = {b: {k: to_single(v) for k, v in leaves.items()} for b, leaves in inputs.items()}
        return self.per_sample(single)[0]


class ExprModule(nn.Module):
    """``nn.Module`` computing Eq. (2) for one expression.

    ``forward`` takes the leaf tensors by keyword (``module(yhat=p, y=t)``), or
    ``(yhat, y)`` positionally for the usual two-input case. Inputs are (N, C, H, W)
    or (N, C); any float dtype; any device.
    """

    def __init__(self, expr: Expr, operators: OperatorSet | Sequence[str] | None = None):
        super().__init__()
        self.expr = expr
        self._compiled = CompiledExpr(expr, operators)

    def extra_repr(self) -> str:
        return str(self.expr)

    def forward(self, *args: torch.Tensor, **kwargs: torch.Tensor) -> torch.Tensor:
        if args:
            if len(args) != 2:
                raise TypeError("pass (yhat, y) positionally, or every leaf by keyword")
            kwargs = {"yhat": args[0], "y": args[1], **kwargs}
        missing = [n for n in self._compiled.leaf_names if n not in kwargs]
        if missing:
            raise TypeError(f"missing leaf tensor(s): {', '.join(missing)}")
        leaves = {k: to_single(v) for k, v in kwargs.items()}
        return self._compiled.per_sample(leaves)[0]


class LossModule(nn.Module):
    """``nn.Module`` summing the branches of a :class:`Loss`.

    ``forward(inputs)`` takes ``{branch: {leaf: tensor}}``; a single-branch loss also
    accepts the leaves directly, like :class:`ExprModule`.
    """

    def __init__(self, loss: Loss | Expr, operators: OperatorSet | Sequence[str] | None = None):
        super().__init__()
        self.loss = as_loss(loss)
        self._compiled = CompiledLoss(self.loss, operators)

    def extra_repr(self) -> str:
        return str(self.loss)

    def forward(self, *args, **kwargs) -> torch.Tensor:
        names = self.loss.names
        if len(args) == 1 and isinstance(args[0], Mapping) and not kwargs:
            return self._compiled(args[0])
        if len(names) == 1:
            if args:
                if len(args) != 2:
                    raise TypeError("pass (yhat, y) positionally, or every leaf by keyword")
                kwargs = {"yhat": args[0], "y": args[1], **kwargs}
            return self._compiled({names[0]: kwargs})
        return self._compiled(kwargs)
