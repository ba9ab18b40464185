"""Optuna define-by-run and Ray Tune param_space adapters yield valid configs (no Ray cluster started)."""

from __future__ import annotations

import os

import pytest

from resnetx import ResNetXConfig
from search_spaces import load_space, min_units_per_stage
from sweep.config.experiment import trial_key
from tests.support.brute import brute_ranks

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def check_bounds(cfg: dict) -> None:
    m = cfg["model"]
    ResNetXConfig(**m)
    last = sum(m["num_nodes"])
    assert m["fold"] <= m["start_id"] < m["end_id"] <= last


def _study(directions: list[str]):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=0, n_startup_trials=4, multivariate=True, group=True)
    return optuna.create_study(directions=directions, sampler=sampler)


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.parametrize("name", ["quick", "cifar10-pareto"])
def test_optuna_single_objective(name):
    space = load_space(name)
    study = _study(["maximize"])

    def objective(trial):
        cfg = space.suggest(trial)
        check_bounds(cfg)
        if space.budget_violation(cfg) is not None:
            return float("nan")  # the sweep's searcher tells Optuna such points failed
        return -space.cost(cfg).params  # stand-in for accuracy: no training here

    study.optimize(objective, n_trials=12)
    params = study.trials[-1].params
    assert {"model.unit", "model.fold", "model.start_id", "model.end_id", "model.num_nodes.total"} <= set(params)
    assert "model.num_nodes.0" in params and "model.num_nodes.2" not in params  # the last stage takes the rest
    assert list(params).index("model.fold") < list(params).index("model.start_id") < list(params).index("model.end_id")


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_optuna_multi_objective_ask_tell():
    import optuna

    space = load_space("cifar10-pareto")
    study = _study(["maximize", "minimize"])
    for _ in range(15):
        trial = study.ask()
        cfg = space.suggest(trial)
        check_bounds(cfg)
        assert min(cfg["model"]["num_nodes"]) >= min_units_per_stage(cfg["model"]["fold"])
        if space.budget_violation(cfg) is not None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        cost = space.cost(cfg)
        study.tell(trial, [cfg["model"]["fold"] / 4, cost.params])
    # Optuna's front of what it was told equals the front by definition (tests/support/brute.py)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) >= 5  # the space's budget leaves enough points for a front to mean something
    ranks = brute_ranks([t.values for t in complete], maximize=[True, False])
    assert {t.number for t in study.best_trials} == {t.number for t, r in zip(complete, ranks) if r == 0}


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_optuna_on_a_grid_space():
    space = load_space("fold-ablation")
    study = _study(["maximize"])
    study.optimize(lambda t: float(space.suggest(t)["model"]["fold"]), n_trials=6)
    assert {"model.fold", "train.weights", "train.seed"} <= set(study.trials[0].params)


def _variants(param_space: dict, n: int, seed: int) -> list[dict]:
    """Resolve a param_space the way Tune's BasicVariantGenerator does, without Ray running."""
    from ray.tune.experiment import Experiment
    from ray.tune.search.basic_variant import BasicVariantGenerator

    generator = BasicVariantGenerator(random_state=seed)
    generator.add_configurations([Experiment("spaces-test", lambda config: None, config=param_space, num_samples=n)])
    configs = []
    while (trial := generator.next_trial()) is not None:
        configs.append(trial.config)
    return configs


@pytest.mark.parametrize("name", ["quick", "cifar10-pareto"])
def test_tune_random_param_space(name):
    import ray

    space = load_space(name)
    configs = _variants(space.tune_param_space("random"), 40, seed=1)
    assert len(configs) == 40
    nested = [space.from_tune_config(c) for c in configs]
    for cfg in nested:
        check_bounds(cfg)
        assert set(cfg["model"]) == {f.name.split(".", 1)[1] for f in space.fields if f.name.startswith("model.")}
    assert len({key_of(space, c) for c in nested}) > 30
    # reproducible from Tune's own seed; different seeds differ
    assert [space.from_tune_config(c) for c in _variants(space.tune_param_space("random"), 40, seed=1)] == nested
    assert [space.from_tune_config(c) for c in _variants(space.tune_param_space("random"), 40, seed=2)] != nested
    assert not ray.is_initialized()


def test_tune_grid_param_space_equals_the_grid():
    space = load_space("fold-ablation")
    configs = [space.from_tune_config(c) for c in _variants(space.tune_param_space("grid"), 1, seed=0)]
    assert len(configs) == 24
    grid = space.grid()

    def key(cfg):
        return (cfg["train"]["seed"], cfg["model"]["fold"], cfg["train"]["weights"], cfg["train"]["lr"],
                cfg["model"]["start_id"], cfg["model"]["end_id"])

    assert sorted(map(key, configs), key=repr) == sorted(map(key, grid), key=repr)
    for cfg in configs:
        check_bounds(cfg)
    # random kind on a grid space draws grid axes instead of enumerating them
    assert len(_variants(space.tune_param_space("random"), 5, seed=0)) == 5


def test_tune_param_space_kinds_and_missing_keys():
    from resnetx.errors import ConfigError

    space = load_space("quick")
    with pytest.raises(ConfigError, match=r"^search: got 'bayes'; must be one of random, grid"):
        space.tune_param_space("bayes")
    with pytest.raises(ConfigError, match=r"^config: got 'model.stem'; is missing from the Tune config"):
        space.from_tune_config({"model.fold": 1})


def key_of(space, config):
    """The sweep's one de-duplication key (``sweep.config.experiment.trial_key``) for a point of ``space``."""
    return trial_key(config, space.seed_is_axis)
