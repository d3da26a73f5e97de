"""The search space: text form, parser, operators, compilation, initialization, mutation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import autoloss_zero as az
from autoloss_zero.expr import Expr, Loss, MutationConfig, get_operators, make_operator, to_python
from autoloss_zero.expr.mutate import offspring_with_label
from autoloss_zero.expr.tree import node_depth
from conftest import examples, load_module, np_loss

OPS = get_operators()
LEAVES = ("yhat", "y", "1")
seeds = st.integers(min_value=0, max_value=2**32 - 1)


def random_tree(seed: int) -> Expr:
    """A random tree reached by init + a few offspring steps (varied shapes and depths)."""
    rng = np.random.default_rng(seed)
    e = az.random_expr(rng, depth=int(rng.integers(0, 5)))
    for _ in range(int(rng.integers(0, 4))):
        e = az.offspring(e, rng)
    return e


def min_depth(node) -> int:
    if isinstance(node, str):
        return 0
    return 1 + min(min_depth(c) for c in node[1:])


# -- text form ------------------------------------------------------------------


@settings(max_examples=examples(500))
@given(seeds)
def test_text_round_trip(seed):
    e = random_tree(seed)
    text = str(e)
    back = az.parse(text)
    assert back == e
    assert str(back) == text


def test_text_form_is_exact():
    for text in ["y", "1", "yhat", "Neg(Mul(y, Log(yhat)))", "Add(1, MaxPool3x3(Mean_c(y)))"]:
        assert str(az.parse(text)) == text
    # str never rewrites a tree, even one whose normal form differs
    e = az.parse("Neg(Neg(Add(yhat, y)))")
    assert str(e) == "Neg(Neg(Add(yhat, y)))"
    assert e.key == "Add(y, yhat)"


@pytest.mark.parametrize(
    "text, pos, words",
    [
        ("Foo(y)", 0, "unknown operator 'Foo'"),
        ("Log(z)", 4, "unknown leaf 'z'"),
        ("Add(y)", 5, "expected ','"),
        ("Add(y, yhat, 1)", 11, "takes 2 argument"),
        ("Log(y", 5, "expected ')'"),
        ("Log y", 0, "expected '(' after operator"),
        ("Log", 0, "expected '(' after operator"),
        ("", 0, "empty"),
        ("Log(2)", 4, "only the constant 1"),
        ("Mul(y, )", 7, "expected an operator or a leaf"),
        ("y)", 1, "unexpected text"),
        ("Log(y))", 6, "unexpected text"),
    ],
)
def test_malformed_text_names_position(text, pos, words):
    with pytest.raises(ValueError) as info:
        az.parse(text)
    msg = str(info.value)
    assert f"position {pos}:" in msg
    assert words in msg


def test_multi_branch_loss_text():
    leaves = {"cls": ("yhat", "y", "1"), "reg": ("i", "u", "e", "1")}
    text = "cls: Neg(Mul(y, Log(yhat))); reg: Add(1, Neg(Mul(i, Inv(u))))"
    loss = az.parse(text, leaves=leaves)
    assert isinstance(loss, Loss)
    assert loss.names == ("cls", "reg")
    assert str(loss) == text
    assert az.parse(str(loss), leaves=leaves) == loss
    with pytest.raises(ValueError, match="unknown leaf 'yhat'"):
        az.parse("cls: y; reg: Log(yhat)", leaves=leaves)
    with pytest.raises(ValueError, match="missing branch"):
        az.parse("cls: y", leaves=leaves)
    with pytest.raises(ValueError, match="given twice"):
        az.parse("cls: y; cls: y")


def test_structure_properties():
    e = az.parse("Add(Log(yhat), y)")
    assert e.depth == 2 and e.size == 4 and e.leaves == {"yhat", "y"}
    assert az.parse("y").depth == 0
    with pytest.raises(AttributeError):
        e.node = "y"
    assert hash(e) == hash(az.parse("Add(Log(yhat), y)"))


# -- operators: hand-computed values at edge inputs ---------------------------------

EDGE = np.array([0.0, 1e-30, -1e-30, 1e-12, -1e-12, 1e-3, -1e-3, 0.5, -2.0, 1e6, -1e6, 40.0])
EPS = 1e-12


def _np_unary(name, x):
    with np.errstate(all="ignore"):
        return {
            "Neg": -x,
            "Abs": np.abs(x),
            "Inv": 1.0 / (x + EPS),
            "Log": np.sign(x) * np.log(np.abs(x) + EPS),
            "Exp": np.exp(x),
            "Tanh": np.tanh(x),
            "Square": x * x,
            "Sqrt": np.sign(x) * np.sqrt(np.abs(x) + EPS),
        }[name]


@pytest.mark.parametrize("name", ["Neg", "Abs", "Inv", "Log", "Exp", "Tanh", "Square", "Sqrt"])
def test_elementwise_unary_edge_values(name):
    x = torch.tensor(EDGE, dtype=torch.float64).reshape(1, 1, 1, 3, 4)
    got = OPS[name](x).reshape(-1).numpy()
    want = _np_unary(name, EDGE)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    assert got.shape == want.shape


def test_sign_protection_values():
    # Log and Sqrt keep the sign; both map 0 to 0 (sign(0) = 0); Inv(0) = 1/eps.
    assert OPS["Log"](torch.tensor([[-np.e]], dtype=torch.float64)).item() == pytest.approx(-1.0)
    assert OPS["Sqrt"](torch.tensor([[-4.0]], dtype=torch.float64)).item() == pytest.approx(-2.0)
    assert OPS["Log"](torch.zeros(1, dtype=torch.float64)).item() == 0.0
    assert OPS["Inv"](torch.zeros(1, dtype=torch.float64)).item() == pytest.approx(1e12)


def test_binary_edge_values():
    a = np.repeat(EDGE, len(EDGE))
    b = np.tile(EDGE, len(EDGE))
    ta = torch.tensor(a).reshape(1, 1, 1, len(EDGE), len(EDGE))
    tb = torch.tensor(b).reshape(1, 1, 1, len(EDGE), len(EDGE))
    np.testing.assert_array_equal(OPS["Add"](ta, tb).reshape(-1).numpy(), a + b)
    np.testing.assert_array_equal(OPS["Mul"](ta, tb).reshape(-1).numpy(), a * b)


def test_aggregations_against_loops():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 4, 5, 6))  # (S, N, C, H, W)
    t = torch.tensor(x)
    mean_nhw = OPS["Mean_nhw"](t).numpy()
    mean_c = OPS["Mean_c"](t).numpy()
    mx = OPS["MaxPool3x3"](t).numpy()
    mn = OPS["MinPool3x3"](t).numpy()
    S, N, C, H, W = x.shape
    for s in range(S):
        for c in range(C):
            np.testing.assert_allclose(mean_nhw[s, :, c], x[s, :, c].mean())
        for n in range(N):
            for h in range(H):
                for w in range(W):
                    np.testing.assert_allclose(mean_c[s, n, :, h, w], x[s, n, :, h, w].mean())
                    win = x[s, n, :, max(h - 1, 0) : h + 2, max(w - 1, 0) : w + 2]
                    np.testing.assert_allclose(mx[s, n, :, h, w], win.max(axis=(1, 2)))
                    np.testing.assert_allclose(mn[s, n, :, h, w], win.min(axis=(1, 2)))


def test_padding_never_wins():
    x = -torch.ones(1, 1, 1, 3, 3, dtype=torch.float64)
    assert OPS["MaxPool3x3"](x).max().item() == -1.0
    assert OPS["MinPool3x3"](-x).min().item() == 1.0


@settings(max_examples=examples(100))
@given(seeds, st.sampled_from([(2, 3, 4, 5), (3, 4), (1, 2, 1, 1)]))
def test_shapes_preserved_and_dtypes(seed, shape):
    e = random_tree(seed)
    rng = np.random.default_rng(seed)
    for dtype in (torch.float32, torch.float64):
        yhat = torch.tensor(rng.random(shape), dtype=dtype)
        y = torch.tensor(rng.random(shape), dtype=dtype)
        v = e.to_module()(yhat, y)
        assert v.dim() == 0 and v.dtype == dtype
        s = torch.stack([yhat, y]).reshape(2, *shape)
        env = {"yhat": s, "y": s.flip(0)}
        from autoloss_zero.expr import CompiledExpr

        assert CompiledExpr(e).per_sample(env).shape == (2,)


def test_eq2_aggregation():
    rng = np.random.default_rng(1)
    yhat = rng.random((2, 3, 4, 5))
    y = rng.random((2, 3, 4, 5))
    m = az.parse("Mul(y, yhat)").to_module()
    got = m(torch.tensor(yhat), torch.tensor(y)).item()
    assert got == pytest.approx((y * yhat).sum() / (2 * 4 * 5))
    # (N, C) inputs count as H = W = 1
    got = m(torch.tensor(yhat[:, :, 0, 0]), torch.tensor(y[:, :, 0, 0])).item()
    assert got == pytest.approx((y[:, :, 0, 0] * yhat[:, :, 0, 0]).sum() / 2)
    # the constant broadcasts: sum over N*C*H*W of 1, divided by N*H*W, is C
    assert az.parse("Mul(1, Add(y, Neg(y)))").to_module()(
        torch.tensor(yhat), torch.tensor(y)
    ).item() == pytest.approx(0.0)
    assert az.parse("Mean_c(1)").to_module()(torch.tensor(yhat), torch.tensor(y)).item() == 3.0
    # keyword leaves, and a per-sample evaluation matches separate calls
    assert m(yhat=torch.tensor(yhat), y=torch.tensor(y)).item() == pytest.approx(
        (y * yhat).sum() / 40
    )


@settings(max_examples=examples(200))
@given(seeds, st.sampled_from([(2, 3, 4, 5), (3, 4), (1, 2, 1, 1)]))
def test_compiled_value_equals_an_independent_interpreter(seed, shape):
    """``to_module`` against conftest.np_loss, a numpy interpreter written from DESIGN.md's
    semantics (Table 1 and Eq. (2)) that shares no code with compile.py."""
    e = random_tree(seed)
    rng = np.random.default_rng(seed)
    yhat, y = rng.normal(size=shape), rng.random(shape)
    got = e.to_module()(torch.tensor(yhat), torch.tensor(y)).item()
    want = np_loss(e, {"yhat": yhat, "y": y})
    assert got == pytest.approx(want, rel=1e-9, abs=1e-12, nan_ok=True), str(e)


def test_cross_entropy_formula_matches_torch():
    logits = torch.randn(6, 5, 3, 3, dtype=torch.float64)
    labels = torch.randint(0, 5, (6, 3, 3))
    p = torch.softmax(logits, 1)
    y = torch.nn.functional.one_hot(labels, 5).permute(0, 3, 1, 2).double()
    ce = az.parse("Neg(Mul(y, Log(yhat)))").to_module()(p, y)
    torch.testing.assert_close(ce, torch.nn.functional.cross_entropy(logits, labels))


# -- initialization and mutation ------------------------------------------------------


@settings(max_examples=examples(300))
@given(seeds, st.integers(min_value=0, max_value=5))
def test_init_depth_invariant(seed, depth):
    e = az.random_expr(seed, depth=depth)
    assert node_depth(e.node) == depth and min_depth(e.node) == depth
    assert e.leaves <= set(LEAVES)


def test_init_respects_branch_leaves():
    for s in range(200):
        e = az.random_expr(s, leaves=("i", "u", "e", "1"))
        assert e.leaves <= {"i", "u", "e", "1"}


def _valid(e: Expr, leaves) -> bool:
    ok_ops = all(op in OPS for op in e.operators)

    def arity_ok(node):
        if isinstance(node, str):
            return True
        return len(node) - 1 == OPS.arity[node[0]] and all(arity_ok(c) for c in node[1:])

    return ok_ops and arity_ok(e.node) and e.leaves <= set(leaves) | {"1"}


@settings(max_examples=examples(500))
@given(seeds, st.sampled_from(["insert", "delete", "replace"]))
def test_every_mutation_yields_a_valid_tree(seed, kind):
    leaves = ("i", "u", "e", "1") if seed % 2 else LEAVES
    rng = np.random.default_rng(seed)
    e = az.random_expr(rng, depth=int(rng.integers(0, 4)), leaves=leaves)
    m = az.mutate(e, rng, kind, leaves=leaves)
    assert _valid(m, leaves)
    assert az.parse(str(m), leaves=leaves) == m
    if kind == "insert":
        assert m.size > e.size
    if kind == "delete":
        assert m.size < e.size or e.is_leaf


def test_mutation_details():
    rng = np.random.default_rng(0)
    top = az.parse("Log(yhat)")
    seen_top_replaced = seen_leaf_only = False
    for _ in range(300):
        d = az.mutate(top, rng, "delete")
        assert d == az.parse("yhat")  # the top operator can be deleted: a bare leaf remains
        r = az.mutate(top, rng, "replace")
        assert r != top
        seen_top_replaced |= r.node[0] != "Log" and not isinstance(r.node, str)
        i = az.mutate(az.parse("y"), rng, "insert")
        seen_leaf_only |= i.depth == 1
    assert seen_top_replaced and seen_leaf_only
    assert az.mutate(az.parse("y"), rng, "delete") == az.parse("y")
    with pytest.raises(ValueError, match="unknown mutation"):
        az.mutate(top, rng, "swap")


def test_offspring_fractions():
    rng = np.random.default_rng(123)
    parent = az.parse("Mul(Add(yhat, y), Log(Abs(yhat)))")
    cfg = MutationConfig()
    labels = [offspring_with_label(parent, rng, LEAVES, OPS, cfg)[1] for _ in range(20000)]
    frac = {k: sum(label == k for label in labels) / len(labels) for k in ("copy", "reinit")}
    assert abs(frac["copy"] - 0.10) < 0.01
    assert abs(frac["reinit"] - 0.45) < 0.015
    mutated = [label for label in labels if "+" in label]
    assert abs(len(mutated) / len(labels) - 0.45) < 0.015
    kinds = [k for label in mutated for k in label.split("+")]
    for k in ("insert", "delete", "replace"):
        assert abs(kinds.count(k) / len(kinds) - 1 / 3) < 0.02


def test_size_cap():
    rng = np.random.default_rng(5)
    cfg = MutationConfig(max_size=9)
    e = az.random_expr(rng, depth=2)
    for _ in range(500):
        child, _ = offspring_with_label(e, rng, LEAVES, OPS, cfg)
        assert child.size <= 9 or child == e
        e = child


def test_seeded_determinism():
    a = [str(az.offspring(az.random_expr(7), 8)) for _ in range(3)]
    assert len(set(a)) == 1
    with pytest.raises(ValueError):
        az.random_expr(None)


# -- operator sets -------------------------------------------------------------------


def test_user_operator_validation():
    op = make_operator("Cube", 1, lambda x: x * x * x, source="({0} ** 3)")
    ops = OPS.with_operator(op)
    e = az.parse("Cube(yhat)", operators=ops)
    v = e.to_module(operators=ops)(torch.full((2, 3), 2.0), torch.zeros(2, 3))
    assert v.item() == pytest.approx(8.0 * 3)
    with pytest.raises(ValueError, match="keep the shape"):
        make_operator("Total", 1, lambda x: x.sum())
    with pytest.raises(ValueError, match="upper-case"):
        make_operator("bad", 1, lambda x: x)
    with pytest.raises(ValueError, match="arity"):
        make_operator("Three", 3, lambda x, y, z: x)
    with pytest.raises(ValueError, match="differentiable"):
        make_operator("Detach", 1, lambda x: x.detach() + 0 * x.detach())
    sub = OPS.subset(["Add", "Log"])
    assert sub.names == ("Add", "Log")
    with pytest.raises(ValueError, match="unknown operator"):
        az.parse("Exp(y)", operators=sub)


# -- symbolic side -------------------------------------------------------------------


def test_standalone_export_equals_module(tmp_path):
    rng = np.random.default_rng(2)
    yhat = torch.tensor(rng.random((2, 3, 5, 4)))
    y = torch.tensor(rng.random((2, 3, 5, 4)))
    checked = 0
    for seed in range(300):
        e = random_tree(seed)
        path = tmp_path / f"loss_{seed}.py"
        path.write_text(to_python(e))
        mod = load_module(path)
        a = mod.SearchedLoss()(yhat, y)
        b = e.to_module()(yhat, y)
        torch.testing.assert_close(a, b, equal_nan=True, rtol=1e-12, atol=0)
        checked += e.leaves != {"1"}
    assert checked > 150
    leaves = {"cls": LEAVES, "reg": ("i", "u", "e", "1")}
    loss = az.parse("cls: Neg(Mul(y, Log(yhat))); reg: Add(1, Neg(Mul(i, Inv(u))))", leaves=leaves)
    path = tmp_path / "multi.py"
    path.write_text(to_python(loss))
    inputs = {"cls": {"yhat": yhat, "y": y}, "reg": {"i": yhat[:, :1, 0, 0], "u": y[:, :1, 0, 0]}}
    torch.testing.assert_close(load_module(path).SearchedLoss()(inputs), loss.to_module()(inputs))


@settings(max_examples=examples(500))
@given(seeds)
def test_normal_form_is_equal_valued(seed):
    e = random_tree(seed)
    n = e.normal_form()
    assert n.key == e.key
    rng = np.random.default_rng(seed)
    yhat = torch.tensor(rng.normal(size=(2, 3, 4, 4)))
    y = torch.tensor(rng.random((2, 3, 4, 4)))
    a = e.to_module()(yhat, y)
    b = n.to_module()(yhat, y)
    torch.testing.assert_close(a, b, equal_nan=True, rtol=1e-9, atol=1e-12)


def test_normal_form_merges_known_equivalences():
    pairs = [
        ("Add(y, yhat)", "Add(yhat, y)"),
        ("Neg(Neg(Log(yhat)))", "Log(yhat)"),
        ("Mul(Neg(y), Neg(yhat))", "Mul(yhat, y)"),
        ("Log(Neg(yhat))", "Neg(Log(yhat))"),
        ("Square(Neg(yhat))", "Square(Abs(yhat))"),
        ("MaxPool3x3(Neg(y))", "Neg(MinPool3x3(y))"),
        ("Mean_c(Mean_nhw(y))", "Mean_nhw(Mean_c(y))"),
    ]
    for a, b in pairs:
        assert az.parse(a).key == az.parse(b).key, (a, b)
    assert az.parse("Add(y, y)").key != az.parse("Mul(y, y)").key


LATEX = [  # formula, its LaTeX written by hand: brackets only where precedence needs them
    ("y", "y"),
    ("Neg(Mul(y, Log(yhat)))", r"-y \cdot \operatorname{slog}\left(\hat{y}\right)"),
    ("Add(Square(Add(yhat, Neg(y))), 1)", r"\left(\hat{y} - y\right)^{2} + 1"),
    ("Add(y, Neg(Mul(y, yhat)))", r"y - y \cdot \hat{y}"),
    ("Add(y, Neg(Add(y, yhat)))", r"y - \left(y + \hat{y}\right)"),
    ("Mul(Add(y, yhat), Neg(Add(y, 1)))",
     r"\left(y + \hat{y}\right) \cdot \left(-\left(y + 1\right)\right)"),
    ("Mul(Neg(y), yhat)", r"\left(-y\right) \cdot \hat{y}"),
    ("Square(Neg(y))", r"\left(-y\right)^{2}"),
    ("Sqrt(Inv(Mean_c(Mul(y, yhat))))",
     r"\operatorname{ssqrt}\left(\frac{1}{\operatorname{Mean}_{c}\left(y \cdot \hat{y}\right)"
     r" + \epsilon}\right)"),
    ("Mean_nhw(MaxPool3x3(Exp(Tanh(Abs(MinPool3x3(yhat))))))",
     r"\operatorname{Mean}_{nhw}\left(\operatorname{MaxPool}_{3\times3}\left(e^{\tanh\left("
     r"\left|\operatorname{MinPool}_{3\times3}\left(\hat{y}\right)\right|\right)}\right)\right)"),
]


@pytest.mark.parametrize("text, tex", LATEX)
def test_latex_is_exact(text, tex):
    assert az.parse(text).latex() == tex


def test_latex_and_sympy():
    leaves = {"cls": LEAVES, "reg": ("i", "u", "e", "1")}
    loss = az.parse("cls: Neg(Mul(y, Log(yhat))); reg: Add(1, Neg(Mul(i, Inv(u))))",
                    leaves=leaves)
    assert loss.latex() == (r"\mathcal{L}_{\mathrm{cls}} = -y \cdot \operatorname{slog}"
                            r"\left(\hat{y}\right),\quad \mathcal{L}_{\mathrm{reg}} = "
                            r"1 - i \cdot \frac{1}{u + \epsilon}")
    s = az.parse("Neg(Mul(y, Log(yhat)))").sympy()
    assert "log" in str(s)
    loss = az.parse("a: y; b: Exp(yhat)")
    assert r"\mathcal{L}_{\mathrm{a}}" in loss.latex()


def _weight_sides(node):
    """The target-only sides of ``Mul`` nodes (a region operator over ``y``, no ``yhat``):
    the weights that the mutation ``weight`` adds."""
    from autoloss_zero.expr.mutate import _walk

    region = {n for n in OPS.names if OPS[n].region}
    for n in _walk(node):
        if not isinstance(n, str) and n[0] == "Mul":
            for side in n[1:]:
                leaves = {x for x in _walk(side) if isinstance(x, str)}
                if "yhat" not in leaves and "y" in leaves and any(
                        not isinstance(o, str) and o[0] in region for o in _walk(side)):
                    yield side


def test_weight_multiplies_a_node_by_a_target_only_region_weight():
    """``weight`` turns a node into ``Mul(node, w)``, ``w`` a region operator over the
    target (no prediction leaf, not the constant alone) under at most two unary
    operators; CE can so become a class-weighted CE in one step."""
    from autoloss_zero.expr.mutate import make_child, mutate

    rng = np.random.default_rng(0)
    cfg = MutationConfig(weights={"weight": 1.0}, mutations=1)
    assert set(cfg.weights) == {"insert", "delete", "replace", "graft", "weight"}
    parent = az.parse("Neg(Log(Mul(y, yhat)))")

    seen = set()
    for _ in range(2000):
        child, label = make_child(parent, rng, LEAVES, OPS, cfg, "mutate")
        assert label == "weight"
        assert child.size > parent.size + 1
        assert any(_weight_sides(child.node)), str(child)
        seen.add(str(child))
    assert {"Mul(Neg(Log(Mul(y, yhat))), Inv(Mean_nhw(y)))",
            "Mul(Inv(Mean_nhw(y)), Neg(Log(Mul(y, yhat))))"} & seen
    # nothing to weigh with: no target leaf, no region operator, no prediction leaves
    yhat_only = az.parse("Neg(Log(yhat))", leaves=("yhat", "1"))
    assert mutate(yhat_only, 0, "weight", ("yhat", "1")) == yhat_only
    no_region = [n for n in OPS.names if not OPS[n].region]
    assert mutate(parent, 0, "weight", LEAVES, no_region) == parent
    assert mutate(parent, 0, "weight", LEAVES, prediction=()) == parent


def test_weight_inverse_inverts_the_weight_and_changes_nothing_at_zero():
    """``weight_inverse`` = 1 puts every weight under ``Inv`` (rare classes weigh more);
    0 draws exactly what the plain ``weight`` draws (old studies resume unchanged)."""
    from autoloss_zero.expr.mutate import make_child

    parent = az.parse("Neg(Log(Mul(y, yhat)))")

    def inverted(child):  # a weight that weight added sits under Inv
        return any(w[0] == "Inv" for w in _weight_sides(child.node))

    def children(cfg, n=300):
        rng = np.random.default_rng(1)
        return [make_child(parent, rng, LEAVES, OPS, cfg, "mutate")[0] for _ in range(n)]

    inv = children(MutationConfig(weights={"weight": 1.0}, mutations=1, weight_inverse=1.0))
    assert all(inverted(c) for c in inv)
    plain = children(MutationConfig(weights={"weight": 1.0}, mutations=1))
    assert plain == children(MutationConfig(weights={"weight": 1.0}, mutations=1,
                                            weight_inverse=0.0))
    share = sum(inverted(c) for c in plain) / len(plain)
    assert share < 0.5  # drawn unary operators alone rarely end in Inv
    half = children(MutationConfig(weights={"weight": 1.0}, mutations=1, weight_inverse=0.5))
    assert share < sum(inverted(c) for c in half) / 300 < 1
    for bad in (1.5, -0.1, "x", True):
        with pytest.raises(ValueError, match="weight_inverse"):
            MutationConfig(weight_inverse=bad)


def test_weight_root_weighs_the_whole_loss_and_changes_nothing_at_zero():
    """``weight_root`` = 1 multiplies the whole tree (a class-weighted CE from CE every
    time); 0 draws exactly what the plain ``weight`` draws (old studies resume unchanged)."""
    from autoloss_zero.expr.mutate import make_child

    parent = az.parse("Neg(Log(Mul(y, yhat)))")

    def children(cfg, n=200):
        rng = np.random.default_rng(2)
        return [make_child(parent, rng, LEAVES, OPS, cfg, "mutate")[0] for _ in range(n)]

    def at_root(child):  # Mul(parent, w) or Mul(w, parent)
        return child.node[0] == "Mul" and parent.node in child.node[1:]

    rooted = children(MutationConfig(weights={"weight": 1.0}, mutations=1, weight_root=1.0))
    assert all(at_root(c) for c in rooted)
    plain = children(MutationConfig(weights={"weight": 1.0}, mutations=1))
    assert plain == children(MutationConfig(weights={"weight": 1.0}, mutations=1,
                                            weight_root=0.0))
    assert 0 < sum(at_root(c) for c in plain) < len(plain) / 2  # 1 of CE's 5 nodes
    for bad in (1.5, -0.1, "x", True):
        with pytest.raises(ValueError, match="weight_root"):
            MutationConfig(weight_root=bad)


def test_weight_unary_draws_the_weights_unary_operators_from_its_list_only():
    """``weight_unary = ["Sqrt"]``: above the region operator a weight holds only Sqrt
    (and Inv from ``weight_inverse``); empty draws what ``weight`` drew before; a name
    that is not a unary operator of the searched set is a clear config error."""
    from autoloss_zero.expr.mutate import make_child
    from autoloss_zero.search.candidates import CandidateMaker
    from autoloss_zero.search.config import SearchConfig

    parent = az.parse("Neg(Log(Mul(y, yhat)))")
    region = {n for n in OPS.names if OPS[n].region}

    def children(cfg, n=300):
        rng = np.random.default_rng(3)
        return [make_child(parent, rng, LEAVES, OPS, cfg, "mutate")[0] for _ in range(n)]

    def above_region(w):  # the unary operators between the weight's top and its region op
        out = []
        while w[0] not in region:
            out.append(w[0])
            w = w[1]
        return out

    def weights(cfg):
        return [w for c in children(cfg) for w in _weight_sides(c.node)]

    base = dict(weights={"weight": 1.0}, mutations=1, weight_root=1.0)
    sq = weights(MutationConfig(**base, weight_unary=["Sqrt"]))
    assert sq and all(set(above_region(w)) <= {"Sqrt"} for w in sq)
    assert any(above_region(w) == ["Sqrt"] for w in sq)
    plain = weights(MutationConfig(**base))
    assert any(set(above_region(w)) - {"Sqrt"} for w in plain)  # other unary ops too
    assert children(MutationConfig(**base)) == children(MutationConfig(**base, weight_unary=[]))
    for bad in ("Sqrt", [1], None):
        with pytest.raises(ValueError, match="weight_unary"):
            MutationConfig(weight_unary=bad)
    cfg = SearchConfig.from_dict({"mutation": {"weight_unary": ["Add"]}})
    with pytest.raises(ValueError, match="weight_unary: 'Add' is not a unary operator"):
        CandidateMaker.from_config(az.get_task("classification"), cfg)


def test_graft_adds_a_whole_term_and_recombination_mixes_two_parents():
    from autoloss_zero.expr.mutate import make_child

    rng = np.random.default_rng(0)
    cfg = MutationConfig(weights={"graft": 1.0}, mutations=1)
    parent = az.parse("Neg(Mul(y, Log(yhat)))")
    grown = 0
    for _ in range(200):
        child, label = make_child(parent, rng, LEAVES, OPS, cfg, "mutate")
        assert label == "graft"
        added = child.size - parent.size
        assert added >= 3  # a binary operator and a subtree of depth 1 or 2
        assert str(parent) in str(child) or added >= 3
        grown += child.depth > parent.depth
    assert grown > 0
    a, b = az.parse("Neg(Mul(y, Log(yhat)))"), az.parse("Mean_nhw(Mul(y, yhat))")
    rec = MutationConfig(recombination={"sum": 1.0})
    child, label = make_child(a, rng, LEAVES, OPS, rec, "recombine", b)
    assert (str(child), label) == (f"Add({a}, {b})", "sum")
    rec = MutationConfig(recombination={"crossover": 1.0})
    subtrees_b = {"Mean_nhw(Mul(y, yhat))", "Mul(y, yhat)", "y", "yhat"}
    for _ in range(100):
        child, label = make_child(a, rng, LEAVES, OPS, rec, "recombine", b)
        assert label == "crossover"
        assert any(t in str(child) for t in subtrees_b)
    with pytest.raises(ValueError, match="second parent"):
        make_child(a, rng, LEAVES, OPS, rec, "recombine")
    with pytest.raises(ValueError, match="recombination"):
        MutationConfig(recombination={"blend": 1.0})
    # ``branch``: the second parent's tree whole when it is one of several branches, a
    # crossover when the loss has one searched branch
    rec = MutationConfig(recombination={"branch": 1.0})
    assert make_child(a, rng, LEAVES, OPS, rec, "recombine", b, branches=True) == (b, "branch")
    child, label = make_child(a, rng, LEAVES, OPS, rec, "recombine", b)
    assert label == "crossover" and child != b
    # a kind left out weighs 0: a config stored before ``branch`` existed compares equal
    assert MutationConfig(recombination={"crossover": 1.0, "sum": 1.0}) == MutationConfig()
    assert MutationConfig().recombination["branch"] == 0.0




def test_region_sum_adds_a_region_level_member_to_the_parent():
    from autoloss_zero.expr.mutate import draw_kind, has_region_term, make_child

    pred, tgt = ("yhat",), ("y",)
    region = ["Neg(Mul(Mean_nhw(Mul(y, yhat)), Inv(Mean_nhw(Add(y, yhat)))))",
              "Mean_nhw(Mul(y, Log(yhat)))"]
    not_region = ["Neg(Log(Mul(y, yhat)))", "Mul(Log(yhat), Mean_nhw(y))",
                  "Mean_c(Mul(y, yhat))", "Add(Mean_nhw(yhat), Mean_nhw(y))", "y"]
    for f in region:
        assert has_region_term(az.parse(f).node, OPS, pred, tgt), f
    for f in not_region:
        assert not has_region_term(az.parse(f).node, OPS, pred, tgt), f
    from autoloss_zero.expr.ops import OperatorSet

    def region_max(x):
        return x.amax(dim=(-4, -2, -1), keepdim=True).expand_as(x)

    user = make_operator("RegionMax", 1, region_max, region=True)
    ops = OperatorSet([*OPS.values(), user])
    assert user.region and not make_operator("Plain", 1, region_max).region
    e = az.parse("Neg(RegionMax(Mul(y, yhat)))", operators=ops)
    assert has_region_term(e.node, ops, pred, tgt)
    assert not has_region_term(az.parse("RegionMax(y)", operators=ops).node, ops, pred, tgt)
    a, r = az.parse("Neg(Log(Mul(y, yhat)))"), az.parse(region[0])
    rng = np.random.default_rng(0)
    cfg = MutationConfig(region_sum=1.0)
    child, label = make_child(a, rng, LEAVES, OPS, cfg, "region_sum", r)
    assert (str(child), label) == (f"Add({a}, {r})", "region_sum")
    assert {draw_kind(rng, cfg) for _ in range(20)} == {"region_sum"}
    assert "region_sum" not in {draw_kind(rng, cfg, region=False) for _ in range(200)}
    paper = MutationConfig()  # off by default: the paper's draws, the same stream
    r1, r2 = np.random.default_rng(5), np.random.default_rng(5)
    assert [draw_kind(r1, paper) for _ in range(50)] == \
        [draw_kind(r2, MutationConfig(region_sum=0.0), region=False) for _ in range(50)]
    big = az.parse("Add(" * 6 + "y" + ", yhat)" * 6)
    assert make_child(big, rng, LEAVES, OPS, MutationConfig(max_size=15), "region_sum",
                      big) == (big, "copy")
    with pytest.raises(ValueError, match="second parent"):
        make_child(a, rng, LEAVES, OPS, cfg, "region_sum")
    for bad in (-0.1, 1.5, True, "x"):
        with pytest.raises(ValueError, match="mutation.region_sum must be in"):
            MutationConfig(region_sum=bad)


def test_region_terms_are_the_largest_subtrees_with_the_prediction_only_below_region_ops():
    from autoloss_zero.expr.mutate import region_terms
    from autoloss_zero.expr.tree import node_text

    def terms(formula, pred=("yhat",), tgt=("y",)):
        node = az.parse(formula, leaves=(*pred, *tgt)).node
        return [node_text(t) for t in region_terms(node, OPS, pred, tgt)]

    dice = "Neg(Mul(Mean_nhw(Mul(y, yhat)), Inv(Mean_nhw(Add(y, yhat)))))"
    assert terms(f"Add(Neg(Log(Mul(y, yhat))), {dice})") == [dice]  # whole, not its means
    assert terms("Mul(Log(Mean_nhw(Mul(yhat, y))), yhat)") == ["Log(Mean_nhw(Mul(yhat, y)))"]
    assert terms("Add(Mean_nhw(Mul(y, yhat)), Mul(yhat, Mean_nhw(Mul(y, yhat))))") == [
        "Mean_nhw(Mul(y, yhat))", "Mean_nhw(Mul(y, yhat))"]
    # no term: the region operator sees no target, or no prediction, or there is none
    for f in ("Mul(Neg(Log(Mul(y, yhat))), Inv(Mean_nhw(y)))", "Mean_nhw(yhat)",
              "Neg(Log(Mul(y, yhat)))", "y"):
        assert terms(f) == [], f
    # another task's leaves: the box leaves i, u, e all count as prediction
    assert terms("Add(i, Mean_nhw(Mul(u, y)))", ("i", "u", "e"), ("y",)) == [
        "Mean_nhw(Mul(u, y))"]
    assert MutationConfig(region_pick="term").region_pick == "term"
    for bad in ("terms", "", 1):
        with pytest.raises(ValueError, match="mutation.region_pick must be"):
            MutationConfig(region_pick=bad)


def test_depth_and_size_limits_hold_for_every_method():
    """parse accepts trees up to MAX_DEPTH / MAX_SIZE, and every method works on them."""
    from autoloss_zero.expr.symbolic import to_python
    from autoloss_zero.expr.tree import MAX_DEPTH, MAX_SIZE

    deepest = "Log(Neg(" * (MAX_DEPTH // 2) + "yhat" + "))" * (MAX_DEPTH // 2)
    e = az.parse(deepest)
    assert e.depth == MAX_DEPTH and str(e) == deepest
    assert e.key and e.latex() and str(e.sympy()) and hash(e) == hash(az.parse(deepest))
    compile(to_python(e), "<exported>", "exec")
    p, t = torch.rand(2, 3), torch.rand(2, 3)
    assert e.to_module()(p, t).shape == ()
    with pytest.raises(ValueError, match=f"deeper than {MAX_DEPTH} operators"):
        az.parse("Neg(" + deepest + ")")

    def full(depth):
        return "y" if depth == 0 else f"Add({full(depth - 1)}, Neg({full(depth - 1)}))"

    big = az.parse(full(7))  # 2^8 - 1 leaves-and-Adds plus the Negs
    assert big.size <= MAX_SIZE and big.key and big.latex() and str(big.sympy())
    with pytest.raises(ValueError, match=f"more than {MAX_SIZE} nodes"):
        az.parse(full(9))
    # offspring never leave the limits, however often they grow
    from autoloss_zero.expr.mutate import MutationConfig, offspring_with_label
    from autoloss_zero.expr.ops import DEFAULT_OPERATORS

    cfg = MutationConfig(copy=0.0, reinit=0.0, weights={"insert": 1.0}, mutations=100)
    rng = np.random.default_rng(0)
    child = e
    for _ in range(5):
        child, _ = offspring_with_label(child, rng, ("yhat", "y", "1"), DEFAULT_OPERATORS, cfg)
    assert child.depth <= MAX_DEPTH and child.size <= MAX_SIZE
    az.parse(str(child))
