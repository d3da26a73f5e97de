"""Tasks used by the tests to exercise failure paths (imported by worker processes)."""

from autoloss_zero.tasks.classification import ClassificationTask


class FailingTask(ClassificationTask):
    """Screens like classification, but its training raises."""

    name = "failing"

    def train(self, loss_fn, **kwargs):
        raise RuntimeError("user code broke on purpose")


class SlowTask(ClassificationTask):
    """Screens like classification; its training sleeps far past any sane timeout."""

    name = "slow"

    def train(self, loss_fn, **kwargs):
        import time

        time.sleep(600)
        return {"accuracy": 0.0}


class BrokenScreeningTask(ClassificationTask):
    """Its branch transform raises for every candidate: screening cannot pass."""

    name = "broken-screening"

    def branch_inputs(self, raw, target):
        raise KeyError("no such output")


class MarkingSlowTask(ClassificationTask):
    """Screens like classification; its training touches $AUTOLOSS_ZERO_TEST_MARK (so a test
    knows a worker is busy), then sleeps far past any sane timeout."""

    name = "marking-slow"

    def train(self, loss_fn, **kwargs):
        import os
        import time
        from pathlib import Path

        Path(os.environ["AUTOLOSS_ZERO_TEST_MARK"]).write_text(str(os.getpid()))
        time.sleep(600)
        return {"accuracy": 0.0}
