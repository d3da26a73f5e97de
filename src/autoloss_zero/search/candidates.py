"""Making candidate losses: random initialization and offspring, branch by branch.

Shared by the evolution and the benchmarks so that both draw candidates the same way.
Fixed branches never change: a branch fixed to a formula is part of every candidate, a
branch fixed to a handcrafted baseline is left out of the searched loss.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, TaskError
from ..expr.mutate import (
    MutationConfig,
    draw_kind,
    has_region_term,
    make_child,
    region_terms,
    within_limits,
)
from ..expr.ops import OperatorSet
from ..expr.random import below, grow
from ..expr.tree import Expr, Loss, Node, normal_key, parse
from ..tasks.base import Task
from .config import SearchConfig


class CandidateMaker:
    def __init__(self, task: Task, ops: OperatorSet, mutation: MutationConfig,
                 offspring_branches: str = "one", fixed_formulas: dict | None = None,
                 fixed_baselines: dict | None = None):
        self.task, self.ops, self.mutation = task, ops, mutation
        self.offspring_branches = offspring_branches
        self.fixed_formulas = dict(fixed_formulas or {})
        self.fixed_baselines = dict(fixed_baselines or {})
        fixed = set(self.fixed_formulas) | set(self.fixed_baselines)
        self.searched = [b for b in task.branches if b.name not in fixed]
        self._terms: dict[str, list[tuple[str, str, Node]]] = {}

    @classmethod
    def from_config(cls, task: Task, config: SearchConfig) -> CandidateMaker:
        """The candidates of a search: its operators (user modules imported), mutation
        settings and fixed branches (``config.fixed``: each a formula, else a baseline id
        of the task). TaskError for a branch the task lacks, an unknown baseline, or
        every branch fixed."""
        ops = config.operator_set()
        unknown = set(config.fixed) - set(task.branch_names)
        if unknown:
            raise TaskError(f"--fix: task {task.name} has no branch {', '.join(sorted(unknown))}")
        formulas: dict[str, Expr] = {}
        baselines: dict[str, str] = {}
        for branch, text in config.fixed.items():
            try:
                formulas[branch] = parse(text, leaves=task.leaf_spec()[branch], operators=ops)
            except ValueError:
                task.branch_baseline(branch, text)  # raises TaskError if unknown
                baselines[branch] = text
        odd = [n for n in config.mutation.weight_unary if n not in ops.unary]
        if odd:
            raise ConfigError(f"mutation.weight_unary: {odd[0]!r:.40} is not a unary operator "
                              f"of the searched set ({', '.join(ops.unary)})")
        maker = cls(task, ops, config.mutation, config.offspring_branches, formulas, baselines)
        if not maker.searched:
            raise TaskError("every branch is fixed: nothing to search")
        return maker

    def parse_loss(self, formula: str) -> Loss:
        """A stored formula read back as a loss over the searched branches (ValueError if
        it does not parse)."""
        leaves = {b.name: b.leaves for b in self.task.branches
                  if b.name not in self.fixed_baselines}
        loss = parse(formula, leaves=leaves, operators=self.ops)
        if isinstance(loss, Expr):
            loss = Loss([(next(iter(leaves)), loss)])
        return loss

    def random(self, rng: np.random.Generator,
               keep: dict[str, Expr] | None = None) -> tuple[Loss, str]:
        """Every searched branch a fresh random tree of the configured depth (those in
        ``keep`` kept as they are)."""
        branches = []
        keep = keep or {}
        for b in self.task.branches:
            if b.name in self.fixed_formulas:
                branches.append((b.name, self.fixed_formulas[b.name]))
            elif b.name in keep:
                branches.append((b.name, keep[b.name]))
            elif b.name not in self.fixed_baselines:
                branches.append((b.name, Expr(grow(rng, self.mutation.depth, b.leaves,
                                                   self.ops))))
        return Loss(branches), "init"

    def draw_kind(self, rng: np.random.Generator, region: bool = True) -> str:
        """The offspring kind of one evolution step (drawn once; see ``child``);
        ``region`` False: never a region sum."""
        return draw_kind(rng, self.mutation, region)

    def region_branches(self, loss: Loss) -> list[str]:
        """The searched branches of ``loss`` that hold a region-level term."""
        return [b.name for b in self.searched
                if has_region_term(loss[b.name].node, self.ops, b.prediction_leaves,
                                   b.target_leaves)]

    def region_terms(self, loss: Loss) -> list[tuple[str, str, Node]]:
        """(branch, normal form, term) of every region term of ``loss``'s searched
        branches (:func:`~..expr.mutate.region_terms`)."""
        if loss.key not in self._terms:
            if len(self._terms) > 100_000:
                self._terms.clear()
            self._terms[loss.key] = [
                (b.name, normal_key(t), t) for b in self.searched
                for t in region_terms(loss[b.name].node, self.ops, b.prediction_leaves,
                                      b.target_leaves)]
        return self._terms[loss.key]

    def region_term(self, rng: np.random.Generator, sources, parent: Loss):
        """For a region sum with ``region_pick = "term"``: ``(source, branch, term)``, a
        region term drawn uniformly among the distinct ones (by branch and normal form)
        of the losses in ``sources`` (pairs ``(source, loss)``; the first holder of a
        term is its source) that ``parent`` does not hold, negated with probability 1/2;
        None if there is none."""
        own = {(b, k) for b, k, _ in self.region_terms(parent)}
        pool, seen = [], set(own)
        for source, loss in sources:
            for b, k, t in self.region_terms(loss):
                if (b, k) not in seen:
                    seen.add((b, k))
                    pool.append((source, b, t))
        if not pool:
            return None
        source, branch, term = pool[below(rng, len(pool))]
        return source, branch, ("Neg", term) if rng.random() < 0.5 else term

    def term_sum(self, parent: Loss, branch: str, term: Node) -> tuple[Loss, str]:
        """``parent`` with ``branch`` replaced by ``Add(branch, term)`` (a copy if the sum
        exceeds the size limits)."""
        node = ("Add", parent[branch].node, term)
        if not within_limits(node, self.mutation.max_size):
            return parent, "copy"
        label = "region_sum"
        return parent.replace(branch, Expr(node)), (
            label if len(self.task.branches) == 1 else f"{branch}:{label}")

    def child(self, rng: np.random.Generator, parent: Loss, kind: str,
              other: Loss | None = None) -> tuple[Loss, str]:
        """Offspring of a given kind: one searched branch drawn uniformly (or all) goes
        through the paper's copy / re-initialize / two-mutations procedure, or is
        recombined with the same branch of ``other`` (a ``branch`` recombination takes
        that branch of ``other`` whole; a region sum: one of the branches where ``other``
        holds a region-level term, or all of them); a copy copies the whole loss."""
        if kind == "copy":
            return parent, "copy"
        searched = self.searched
        if kind == "region_sum" and other is not None:
            names = set(self.region_branches(other))
            searched = [b for b in searched if b.name in names] or searched
        chosen = [searched[below(rng, len(searched))]] if self.offspring_branches == "one" \
            else searched
        loss, labels = parent, []
        for b in chosen:
            child, label = make_child(loss[b.name], rng, b.leaves, self.ops, self.mutation,
                                      kind, None if other is None else other[b.name],
                                      b.prediction_leaves, len(self.searched) > 1)
            loss = loss.replace(b.name, child)
            labels.append(label if len(self.task.branches) == 1 else f"{b.name}:{label}")
        return loss, ";".join(labels)
