"""Warm-up-aware rungs: without ``--grace-period`` the first rung is the first epoch after the
trials' ``train.warmup_epochs``; a grace period the user gives wins.

The simulator tests replay the committed records (both trained with one warm-up epoch, read from
their spaces' YAML here, not from the code under test) and check every trial's last epoch: a
trial ASHA or MO-ASHA stops ends at a rung, so none may end at or before the warm-up epoch.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from reports.pareto import parse_objectives
from resnetx.errors import ConfigError
from search_spaces import load_space
from sweep.config.settings import SweepSettings
from sweep.simulator import make_simulation
from sweep.tracking.record import read_record
from sweep.tune.schedulers import default_grace_period, make_scheduler, resolved_grace_period

ROOT = Path(__file__).resolve().parents[1]
RECORDS = {name: ROOT / "bench" / "records" / f"{name}.csv" for name in ("fmnist-bench", "fmnist-bench-2")}
OBJECTIVES = parse_objectives("val_acc:max,params:min")


def first_rung(scheduler) -> int:
    """The first rung's epoch of a scheduler from make_scheduler (Ray's ASHA or our MO-ASHA)."""
    if hasattr(scheduler, "rung_rule"):
        return scheduler.rung_rule.grace_period
    return int(min(milestone for milestone, _ in scheduler._brackets[0]._rungs))


def space_warmup(name: str) -> float:
    text = (ROOT / "search_spaces" / "builtin" / f"{name}.yaml").read_text()
    return float(yaml.safe_load(text)["train"]["warmup_epochs"])


def test_the_default_is_the_first_epoch_after_the_warm_up():
    assert default_grace_period(1) == 2
    assert default_grace_period(1.0) == 2
    assert default_grace_period(0) == 1
    assert default_grace_period(2) == 3
    assert default_grace_period(0.5) == 2  # epoch 1 still warms up: the first epoch without it is 2
    with pytest.raises(ValueError, match="warmup_epochs"):
        default_grace_period(-1)


def test_an_explicit_grace_period_wins():
    assert resolved_grace_period(None, 1) == 2
    assert resolved_grace_period(1, 1) == 1
    assert resolved_grace_period(3, 0) == 3
    for kind in ("asha", "moasha"):
        assert first_rung(make_scheduler(kind, OBJECTIVES, None, warmup_epochs=1)) == 2
        assert first_rung(make_scheduler(kind, OBJECTIVES, None, warmup_epochs=0)) == 1
        assert first_rung(make_scheduler(kind, OBJECTIVES, None, grace_period=1, warmup_epochs=1)) == 1
        assert first_rung(make_scheduler(kind, OBJECTIVES, None, grace_period=4, warmup_epochs=0)) == 4


def test_settings_default_to_auto_and_refuse_a_grace_below_one():
    assert SweepSettings().grace_period is None
    assert SweepSettings(scheduler="asha", grace_period=3).grace_period == 3
    with pytest.raises(ConfigError, match="grace_period"):
        SweepSettings(scheduler="asha", grace_period=0)


@pytest.mark.parametrize(("sets", "grace", "expected"), [
    ((), None, 2),                              # fmnist-bench's one warm-up epoch
    (("train.warmup_epochs=0",), None, 1),      # --set reaches the scheduler
    (("train.warmup_epochs=2",), None, 3),
    (("train.warmup_epochs=2",), 1, 1),         # --grace-period wins
])
def test_the_sweep_reads_the_warm_up_of_its_trial_config(tmp_path, sets, grace, expected):
    """The runner's scheduler (plan_sweep's example trial config: the space's train section + --set)."""
    from sweep.tune import runner

    for kind in ("asha", "moasha"):
        plan = runner.plan_sweep(SweepSettings(space="fmnist-bench", scheduler=kind, grace_period=grace,
                                               sets=sets, runs_dir=str(tmp_path)))
        scheduler = runner._scheduler(plan.settings, plan.objectives, str(tmp_path / "tune"), plan.example)
        assert first_rung(scheduler) == expected


def test_cli_help_says_the_default_and_that_a_value_wins(capsys):
    from sweep.cli.main import main

    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "first epoch after the trials' train.warmup_epochs" in text and "a value given here wins" in text


@pytest.mark.parametrize("record_name", sorted(RECORDS))
@pytest.mark.parametrize(("search", "scheduler"), [("random", "asha"), ("optuna", "moasha")])
def test_no_rung_decision_at_or_before_the_warm_up_epoch_by_default(record_name, search, scheduler):
    record, space = read_record(RECORDS[record_name]), load_space(record_name)
    warmup = space_warmup(record_name)
    assert warmup == 1
    sim = make_simulation(record, space, OBJECTIVES, search=search, scheduler=scheduler, seed=2, num_samples=48)
    stopped = [t.epochs_run for t in sim.trials if t.epochs_run < record.epochs]
    assert stopped, "the scheduler stopped nothing"
    assert min(t.epochs_run for t in sim.trials) > warmup
    assert min(stopped) == warmup + 1  # the first rung is right after the warm-up
    # the same sweep with the old explicit --grace-period 1 stops trials in the warm-up epoch
    old = make_simulation(record, space, OBJECTIVES, search=search, scheduler=scheduler, seed=2, num_samples=48,
                          grace_period=1)
    assert min(t.epochs_run for t in old.trials) == 1


def test_the_sweeps_parent_run_records_the_grace_period_it_used(tmp_path):
    """With the default (None, "auto") the parent run logged ``sweep.grace_period = None``: say the rung."""
    from mlflow.tracking import MlflowClient

    from sweep.config.settings import SweepSettings
    from sweep.tracking.store import prepare_store
    from sweep.tune import runner

    plan = runner.plan_sweep(SweepSettings(runs_dir=str(tmp_path), scheduler="asha", sets=("train.warmup_epochs=1",)))
    experiment_id = prepare_store(plan.tracking_uri, plan.settings.experiment)
    parent = runner._open_parent(plan, experiment_id, "grace-check")
    parent.end()
    params = MlflowClient(plan.tracking_uri).get_run(parent.run_id).data.params
    assert params["sweep.grace_period"] == "2"  # the first epoch after one warm-up epoch
