"""A region-level operator beyond the paper's 14, for an exploration run of issue 13.1.

``Ratio_nhw(a, b)`` = Mean_nhw(a) / (Mean_nhw(b) + EPS): per class, the ratio of two
averages over the batch and the pixels, broadcast back to the input's shape. It is the
form of every Dice- or Jaccard-like region term (soft Dice per class is
``Ratio_nhw(Mul(y, yhat), Add(y, yhat))``), which the paper's operators can write only as
a 7-operator structure that none of the 20,732 candidates of the Table 2 searches held
(benchmarks/README.md, "Is there a better loss in the search space?"). With it, CE + soft
Dice is 11 nodes instead of 17.

Registered on import. A config names it with ``operator_modules = ["region_ops"]`` and
``"Ratio_nhw"`` in ``operators``; ``benchmarks/`` must be on ``PYTHONPATH`` (the workers
inherit it).
"""

import torch

from autoloss_zero import make_operator, register_operator
from autoloss_zero.expr.ops import EPS


def ratio_nhw(a, b):
    def region_mean(x):
        return x if x.numel() == 1 else x.mean(dim=(-4, -2, -1), keepdim=True)

    out = region_mean(a) / (region_mean(b) + EPS)
    return out.expand(torch.broadcast_shapes(a.shape, b.shape))


register_operator(make_operator(
    "Ratio_nhw", 2, ratio_nhw, elementwise=False, region=True,
    latex=r"\frac{{\operatorname{{Mean}}_{{nhw}}\left({0}\right)}}"
          r"{{\operatorname{{Mean}}_{{nhw}}\left({1}\right) + \epsilon}}"))
