"""The sweep's Tune folder (issue 22): two sweeps started in the same second get folders of their
own, ``--name`` is kept, and ``--resume`` finds the folder the sweep recorded.

No Ray runs: the parent run is opened by the runner's own start-up code (``_started``) in a real
MLflow store, and Tune's state file is written where Tune would write it.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console

from sweep.config.settings import SweepSettings
from sweep.tracking.store import prepare_store
from sweep.tune import runner

QUIET = Console(quiet=True)


def _settings(tmp_path: Path, **options) -> SweepSettings:
    return SweepSettings(**{"space": "quick", "search": "random", "num_samples": 2, "runs_dir": str(tmp_path / "runs"),
                            "report": False, **options})


def _start(settings: SweepSettings) -> tuple[str, str]:
    """Open a sweep as ``resnetx sweep`` does (its parent run stays RUNNING: interrupted); (run id, Tune folder)."""
    plan = runner.plan_sweep(settings)
    experiment_id = prepare_store(plan.tracking_uri, settings.experiment)
    parent, tune_path, _ = runner._started(plan, experiment_id, QUIET)
    Path(tune_path).mkdir(parents=True, exist_ok=True)
    (Path(tune_path) / "tuner.pkl").write_bytes(b"")  # what Tuner.can_restore looks for
    return parent.run_id, tune_path


def test_two_names_made_in_the_same_second_differ():
    now = time.time()
    names = {runner.default_sweep_name(now) for _ in range(50)}
    assert len(names) == 50
    stamp = time.strftime("sweep-%Y%m%d-%H%M%S", time.localtime(now))
    assert all(name.startswith(stamp + "-") and len(name) == len(stamp) + 7 for name in names)


def test_two_sweeps_started_together_get_their_own_folders_and_resume_finds_each(tmp_path, monkeypatch):
    # the runner's clock stands still: both sweeps start in the same second
    frozen = SimpleNamespace(strftime=lambda fmt, *_: time.strftime(fmt, time.localtime(0)),
                             localtime=time.localtime, monotonic=time.monotonic, time=time.time)
    monkeypatch.setattr(runner, "time", frozen)
    first_id, first = _start(_settings(tmp_path, seed=0))
    second_id, second = _start(_settings(tmp_path, seed=1))
    assert first_id != second_id and first != second and Path(first).parent == Path(second).parent
    assert Path(first).name.startswith("sweep-") and Path(second).name.startswith("sweep-")

    # --resume continues the latest unfinished sweep, in its own folder
    settings = _settings(tmp_path, resume=True)
    plan = runner.plan_sweep(settings)
    experiment_id = prepare_store(plan.tracking_uri, settings.experiment)
    parent, tune_path, _ = runner._resumed(plan, experiment_id, QUIET, None)
    assert (parent.run_id, tune_path) == (second_id, second)


def test_a_given_name_is_the_folder_and_resume_finds_it(tmp_path):
    run_id, tune_path = _start(_settings(tmp_path, name="mine"))
    assert Path(tune_path).name == "mine"
    settings = _settings(tmp_path, resume=True)
    plan = runner.plan_sweep(settings)
    parent, found, _ = runner._resumed(plan, prepare_store(plan.tracking_uri, settings.experiment), QUIET, None)
    assert (parent.run_id, found) == (run_id, tune_path)


def test_resume_plans_the_sweep_once_from_its_recorded_settings(tmp_path, monkeypatch):
    """``plan_sweep`` (a full ``every_point()`` for a grid, a replay record read) runs once on --resume."""
    _start(_settings(tmp_path, seed=3, num_samples=3))
    planned: list[SweepSettings] = []
    real = runner.plan_sweep

    def spy(settings: SweepSettings) -> runner.SweepPlan:
        planned.append(settings)
        return real(settings)

    class Planned(Exception):  # stops execute_sweep right after planning, before Ray starts
        pass

    def stop(plan: runner.SweepPlan) -> None:
        raise Planned(plan)

    monkeypatch.setattr(runner, "plan_sweep", spy)
    monkeypatch.setattr(runner, "check_can_start", stop)
    with pytest.raises(Planned) as caught:
        runner.execute_sweep(_settings(tmp_path, resume=True, num_samples=200), QUIET)
    assert len(planned) == 1
    assert (planned[0].seed, planned[0].num_samples, planned[0].resume) == (3, 3, True)  # the sweep's own
    assert caught.value.args[0].settings == planned[0]


def test_the_driver_reads_shared_data_from_the_runs_folder(tmp_path, monkeypatch):
    """The driver loaded the trials' shared dataset from ./resnetx-runs/data whatever --runs-dir said,
    while the trials (RESNETX_RUNS_DIR) looked under the runs folder (found through the KubeRay work)."""
    from resnetx.errors import ConfigError
    from sweep.config.settings import SweepSettings
    from sweep.tune.runner import plan_sweep, shared_data

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RESNETX_RUNS_DIR", raising=False)
    runs = tmp_path / "team-runs"
    plan = plan_sweep(SweepSettings(space="cifar10-pareto", runs_dir=str(runs), sets=("data.download=false",)))
    with pytest.raises(ConfigError) as missing:  # no CIFAR-10 here: the error names where it looked
        shared_data(plan)
    assert missing.value.value == str(runs / "data")
