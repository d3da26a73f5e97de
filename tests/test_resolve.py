"""One resolver decides a search's config (CLI and Python API alike): the stored config
wins on resume, a given one that differs is refused with the difference, overrides (the
CLI's --seed and --fix) apply on top of what was given, else stored, else defaults."""

from __future__ import annotations

import pytest

from autoloss_zero.errors import ConfigError, StudyError
from autoloss_zero.search.config import SearchConfig
from autoloss_zero.search.resolve import check_same_search, resolve_config
from autoloss_zero.search.study import Study


def stored_study(path, **config):
    cfg = SearchConfig.from_dict(config)
    s = Study(path)
    s.set_meta({"task": "classification", "task_config": {"a": 1}, "metric": "accuracy",
                "config": cfg.to_dict()})
    s.close()
    return cfg


def test_a_new_study_takes_the_given_config_else_the_defaults(tmp_path):
    path = tmp_path / "new.db"
    r = resolve_config(path)
    assert r.config == SearchConfig() and r.given is None and r.meta is None
    r = resolve_config(path, overrides={"seed": 4, "fixed": {"loss": "ce"}})
    assert (r.config.seed, r.config.fixed) == (4, {"loss": "ce"}) and r.given == r.config
    toml = tmp_path / "c.toml"
    toml.write_text("seed = 2\n[screening]\neta = 0.3\n")
    r = resolve_config(path, toml, {"seed": 5})
    assert (r.config.seed, r.config.screening.eta) == (5, 0.3)
    given = SearchConfig(seed=8)
    assert resolve_config(path, given).config is given
    with pytest.raises(ConfigError, match="unknown config key"):
        resolve_config(path, overrides={"sead": 1})


def test_the_stored_config_wins_and_a_different_one_is_refused(tmp_path):
    path = tmp_path / "s.db"
    stored = stored_study(path, seed=3)
    r = resolve_config(path)
    assert r.config == stored and r.given is None and r.meta["task"] == "classification"
    check_same_search(path, r.meta, "classification", {"a": 1}, "accuracy", r.given)
    same = resolve_config(path, overrides={"seed": 3})  # what the user said, as stored
    assert same.config == stored
    check_same_search(path, same.meta, "classification", {"a": 1}, "accuracy", same.given)
    other = resolve_config(path, overrides={"seed": 7})
    assert other.config == stored  # the stored config wins ...
    with pytest.raises(StudyError, match=r"seed: 3 \(stored\) != 7 \(given\)"):
        check_same_search(path, other.meta, "classification", {"a": 1}, "accuracy",
                          other.given)  # ... and what differs from it is refused
    with pytest.raises(StudyError, match=r"metric: accuracy \(stored\) != r2.*task\.a: 1"):
        check_same_search(path, r.meta, "classification", {"a": 2}, "r2", None)



def test_a_study_resumes_after_the_task_defaults_change(tmp_path, monkeypatch):
    """A resumed search trains with the task options stored in the study, not with the
    task's defaults of today; a given config must give the same effective options (a
    proxy override equal to its base option is no override)."""
    import autoloss_zero as az
    from autoloss_zero.tasks.classification import ClassificationTask
    from conftest import tiny_config

    path = tmp_path / "s.db"
    cfg = tiny_config()
    del cfg.task_options["proxy_steps"]
    az.search("classification", "accuracy", 2, path, cfg, workers=1).close()
    old = dict(ClassificationTask.defaults)
    monkeypatch.setattr(ClassificationTask, "defaults",
                        {**old, "proxy_steps": old["proxy_steps"] + 7, "proxy_batch_size": 16})
    with az.search("classification", "accuracy", 3, path, workers=1) as r:
        assert r.started() == 3
        assert r.meta()["task_config"]["proxy_steps"] == old["proxy_steps"]
    pinned = tiny_config()
    pinned.task_options.update(proxy_steps=old["proxy_steps"],
                               proxy_batch_size=old["batch_size"])  # = no override
    with az.search("classification", "accuracy", 4, path, pinned, workers=1) as r:
        assert r.started() == 4
    with pytest.raises(StudyError, match="task.proxy_steps"):
        az.search("classification", "accuracy", 5, path, tiny_config(), workers=1)
