"""A user task in ~50 lines: regression on scikit-learn's diabetes data, scored by R^2.

Search a loss for it from the command line (run from this folder, or put it on PYTHONPATH):

    autoloss-zero search --task diabetes_task:DiabetesTask --metric r2 --budget 20 \
        --study runs/diabetes.db
"""

import numpy as np
import torch
from sklearn.datasets import load_diabetes
from torch import nn

from autoloss_zero.tasks import Branch, SupervisedTask


class DiabetesTask(SupervisedTask):
    name = "diabetes"
    metrics = ("r2", "neg_mae")  # higher is better
    branches = (Branch("loss", leaves=("yhat", "y", "1")),)  # yhat: prediction, y: target
    defaults = {**SupervisedTask.defaults, "proxy_steps": 150, "full_steps": 1500,
                "batch_size": 32, "lr": 3e-3, "sample_size": 32}

    def load_split(self, split):
        x, y = load_diabetes(return_X_y=True)
        order = np.random.default_rng(0).permutation(len(x))
        part = {"train": order[:310], "val": order[310:354], "test": order[354:]}[split]
        y = (y - y[order[:310]].mean()) / y[order[:310]].std()  # standardized target
        return (torch.tensor(x[part], dtype=torch.float32),
                torch.tensor(y[part], dtype=torch.float32)[:, None])

    def build_model(self):
        return nn.Sequential(nn.Linear(10, 64), nn.ReLU(), nn.Linear(64, 1))

    def branch_inputs(self, raw, target):
        return {"loss": {"yhat": raw, "y": target}}  # identity transforms

    @staticmethod
    def _scores(pred, target, dim):
        err = pred - target
        ss_res = err.pow(2).sum(dim)
        ss_tot = (target - target.mean(dim, keepdim=True)).pow(2).sum(dim).clamp_min(1e-12)
        return 1 - ss_res / ss_tot, -err.abs().mean(dim)

    def sample_metric(self, raw, target, metric):
        r2, neg_mae = self._scores(raw, target, dim=(-2, -1))  # raw: (S, 32, 1)
        return r2 if metric == "r2" else neg_mae

    def split_metrics(self, batches):
        raw, target = (torch.cat(t) for t in zip(*batches))
        r2, neg_mae = self._scores(raw, target, dim=(0, 1))
        return {"r2": float(r2), "neg_mae": float(neg_mae)}
