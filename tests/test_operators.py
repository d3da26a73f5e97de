"""Each operator is one declaration: the exported standalone source runs the functions the
search runs, and agrees with the compiled loss on random and edge inputs."""

from __future__ import annotations

import inspect

import pytest
import torch

import autoloss_zero as az
from autoloss_zero.expr import get_operators, make_operator, to_python
from conftest import load_module


def cube(x):
    return x * x * x


def soft_max2(a, b):
    return torch.logaddexp(a, b)


USER = [make_operator("Cube", 1, cube),  # source and helper: the function itself
        make_operator("SoftMax2", 2, soft_max2, commutative=True),
        make_operator("Twice", 1, lambda x: 2 * x, source="(2 * {0})")]
OPS = get_operators().subset(get_operators().names)
for _op in USER:
    OPS = OPS.with_operator(_op)

SHAPES = [(2, 3, 5, 4), (2, 3)]


def inputs(shape):
    """(name, yhat, y): random values, then edge values (zeros, tiny, huge, negative,
    infinite) that every operator must treat alike in both places."""
    gen = torch.Generator().manual_seed(0)
    out = [("normal", torch.randn(shape, generator=gen, dtype=torch.float64),
            torch.rand(shape, generator=gen, dtype=torch.float64))]
    for name, value in [("zero", 0.0), ("tiny", 1e-300), ("minus tiny", -1e-30),
                        ("huge", 1e30), ("minus huge", -800.0), ("inf", float("inf")),
                        ("minus inf", float("-inf"))]:
        yhat = torch.randn(shape, generator=gen, dtype=torch.float64)
        yhat.view(-1)[::2] = value
        out.append((name, yhat, torch.full(shape, value, dtype=torch.float64)))
    return out


def formulas(name, arity):
    if arity == 1:
        return [f"{name}(yhat)", f"Add({name}(y), Mul({name}(1), yhat))"]
    return [f"{name}(yhat, y)", f"{name}(y, yhat)", f"Add({name}(1, yhat), {name}(1, 1))"]


@pytest.mark.parametrize("name", OPS.names)
def test_exported_source_and_compiled_torch_agree(tmp_path, name):
    op = OPS[name]
    for i, text in enumerate(formulas(name, op.arity)):
        expr = az.parse(text, operators=OPS)
        source = to_python(expr, OPS)
        for helper in op.helpers:  # the very function the search runs
            assert inspect.getsource(helper).strip("\n") in source
        path = tmp_path / f"loss_{i}.py"
        path.write_text(source)
        exported = load_module(path, f"exported_{name}_{i}").SearchedLoss()
        compiled = expr.to_module(operators=OPS)
        for shape in SHAPES:
            for case, yhat, y in inputs(shape):
                a, b = exported(yhat, y), compiled(yhat, y)
                torch.testing.assert_close(a, b, rtol=1e-12, atol=0, equal_nan=True,
                                           msg=f"{text} on {case} {shape}: {a} != {b}")


def test_a_leaf_named_like_a_helper_is_renamed_in_the_export(tmp_path):
    leaves = ("cube", "slog", "y", "1")
    expr = az.parse("Cube(Mul(cube, Log(slog)))", leaves=leaves, operators=OPS)
    path = tmp_path / "clash.py"
    path.write_text(to_python(expr, OPS))
    mod = load_module(path, "exported_clash")
    t = torch.rand(2, 3, dtype=torch.float64) + 0.5
    s = torch.rand(2, 3, dtype=torch.float64) + 0.5
    want = expr.to_module(operators=OPS)(cube=t, slog=s)
    torch.testing.assert_close(mod.branch_loss({"cube": t, "slog": s}), want)


def test_an_operator_without_source_cannot_be_exported():
    ops = get_operators().with_operator(make_operator("Half", 1, lambda x: x / 2))
    with pytest.raises(ValueError, match="no Python source"):
        to_python(az.parse("Half(yhat)", operators=ops), ops)
