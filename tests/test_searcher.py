"""The sweep's searcher without a Ray cluster: seeds, de-duplication, budgets, resume."""

from __future__ import annotations

import pickle
import textwrap

import pytest
from ray.tune.search import Searcher

from reports.pareto import parse_objectives
from search_spaces import load_space, parse_space_text
from sweep.search.core import RestoredTrial, objective_values
from sweep.search.proposers import make_proposer
from sweep.training.seeding import derive_seed
from sweep.tune.searcher import ResNetXSearcher

OBJECTIVES = parse_objectives("val_acc:max,params:min")
TINY = """
name: tiny
model:
  stem: cifar
  in_channels: 1
  num_classes: 10
  base: 8
  stem_width: 8
  unit: basic
  bottle_scale: 1.0
  num_nodes: [2, 2]
  fold: {choice: [1, 2]}
  start_id: {low: fold, high: last_node - 1}
  end_id: {low: start_id + 1, high: last_node}
data: {name: digits, image_size: 16}
train: {epochs: 1}
"""


def searcher(search: str, seed: int = 0, space=None, num_samples: int = 12) -> ResNetXSearcher:
    space = space or load_space("quick")
    return ResNetXSearcher(space, make_proposer(search, space, OBJECTIVES, seed, num_samples), OBJECTIVES, seed)


def run(s: ResNetXSearcher, n: int, complete: bool = True) -> list[dict]:
    """Ask for n trials, completing each with a made-up result (what a trial would report)."""
    out = []
    for i in range(n):
        config = s.suggest(f"t{i}")
        if config in (None, Searcher.FINISHED):
            out.append(config)
            continue
        out.append(config)
        if complete:
            s.on_trial_complete(f"t{i}", {"val_acc": 0.5 + 0.01 * i, "params": 1000 + i, "status": "finished"})
    return out


@pytest.mark.parametrize("search", ["optuna", "random"])
def test_same_seed_proposes_the_same_configs(search):
    first, second = run(searcher(search, seed=3), 6), run(searcher(search, seed=3), 6)
    assert [c["config_hash"] for c in first] == [c["config_hash"] for c in second]
    other = run(searcher(search, seed=4), 6)
    assert [c["config_hash"] for c in other] != [c["config_hash"] for c in first]


def _changed(experiment: dict, section: str, **fields) -> dict:
    return {**experiment, section: {**experiment[section], **fields}}


def test_trial_seed_is_derived_from_the_sweep_seed_and_the_config():
    s = searcher("random", seed=7)
    config = s.suggest("t0")
    assert config["experiment"]["train"]["seed"] == derive_seed(7, config["config_hash"])


def test_the_trial_key_sees_what_is_trained_and_nothing_else():
    """The key a proposal carries against variants built here: execution-only fields (seed, device,
    threads), the data download flag and, at fold 1, the start/end ids build the same network the
    same way, so the key stays; the learning rate, the epochs and the fold change what is trained."""
    s = searcher("random", seed=7)
    config = s.suggest("t0")
    experiment, key = config["experiment"], config["config_hash"]
    assert experiment["model"]["fold"] == 1 and experiment["model"]["start_id"] == 2  # what the variants assume
    assert len(key) == 12 and set(key) <= set("0123456789abcdef")
    same = [_changed(experiment, "train", seed=experiment["train"]["seed"] + 1),
            _changed(experiment, "train", device="cpu", num_threads=1, checkpoint_every=3),
            _changed(experiment, "data", download=False),
            _changed(experiment, "model", start_id=1, end_id=None)]
    assert [s.trial_key(v) for v in same] == [key] * len(same)
    different = [_changed(experiment, "train", lr=experiment["train"]["lr"] * 2),
                 _changed(experiment, "train", epochs=experiment["train"]["epochs"] + 1),
                 _changed(experiment, "model", fold=2)]
    keys = [s.trial_key(v) for v in different]
    assert key not in keys and len(set(keys)) == len(different)


@pytest.mark.parametrize("search", ["random", "optuna"])
def test_a_network_is_never_trained_twice(search):
    space = parse_space_text(textwrap.dedent(TINY), "tiny.yaml")
    assert space.count_distinct() == 4  # fold 1 (ids irrelevant) + fold 2 with (2,3), (2,4), (3,4)
    s = searcher(search, space=space, num_samples=10)
    proposals = run(s, 10)
    trained = [p for p in proposals if isinstance(p, dict)]
    keys = [p["config_hash"] for p in trained]
    assert len(keys) == len(set(keys)) <= 4
    # both find them all, then say the space is used up: TPE alone kept proposing the networks it had
    # seen and stopped short (on fmnist-bench with 128 of 224); after 3 duplicates in a row the
    # searcher now asks for an untrained point drawn at random
    assert len(keys) == 4
    assert "used up" in s.stats.stop_reason
    assert proposals[-1] == Searcher.FINISHED
    assert s.stats.duplicates > 0


def test_duplicates_of_a_running_trial_wait_for_its_result():
    space = parse_space_text(textwrap.dedent(TINY), "tiny.yaml")
    s = searcher("random", space=space)
    running = [s.suggest(f"t{i}") for i in range(4)]  # all 4 distinct networks, none finished yet
    assert len({c["config_hash"] for c in running}) == 4
    # Nothing new to propose: the space is used up. FINISHED at once (Tune still reports the
    # running trials' results; waiting for them here would hang a sweep on one stale live entry).
    assert s.suggest("t4") == Searcher.FINISHED
    for i in range(4):
        s.on_trial_complete(f"t{i}", {"val_acc": 0.9, "params": 10, "status": "finished"})
    assert all(s.results[c["config_hash"]] == [0.9, 10.0] for c in running)
    assert s.suggest("t5") == Searcher.FINISHED


def tight_quick(max_params: int = 20_000):
    """The quick space with a parameter budget that most of it breaks."""
    from importlib.resources import files

    text = (files("search_spaces") / "builtin" / "quick.yaml").read_text()
    return parse_space_text(text.replace("max_params: 150000", f"max_params: {max_params}"), "tight.yaml")


def test_over_budget_points_are_never_trained():
    space = tight_quick()
    s = ResNetXSearcher(space, make_proposer("optuna", space, OBJECTIVES, 0, 30), OBJECTIVES, 0)
    trained = [c for c in run(s, 8) if isinstance(c, dict)]
    assert trained and all(space.cost(c["experiment"]).params <= 20_000 for c in trained)
    assert s.stats.infeasible > 0 and s.stats.trained == len(trained)


def over_budget_shares(search: str, seed: int, proposals: int = 60) -> tuple[float, float]:
    """Share of over-budget proposals in the first and the second half of ``proposals``.

    Feasible points are "trained" at once with an accuracy that grows with size (the searcher
    sees them complete); infeasible ones are told as the searcher tells them.
    """
    space = tight_quick()
    proposer = make_proposer("optuna", space, OBJECTIVES, seed, proposals)
    if search == "random":  # the same define-by-run proposals, drawn uniformly (the searcher's random
        import optuna  # search samples within the budget by construction, so it is no baseline)

        proposer.study.sampler = optuna.samplers.RandomSampler(seed=seed)
    over = []
    for _ in range(proposals):
        config, token = proposer.propose()
        excess = space.budget_excess(config)
        over.append(excess > 0)
        if excess > 0:
            proposer.tell_infeasible(token, excess)
        else:
            params = space.cost(config).params
            proposer.tell(token, [0.7 + 0.2 * min(1.0, params / 20_000), float(params)])
    half = proposals // 2
    return sum(over[:half]) / half, sum(over[half:]) / half


def test_tpe_learns_the_infeasible_region_from_constraints():
    """Told FAIL, over-budget points taught TPE nothing and it kept proposing them."""
    firsts, seconds, randoms = [], [], []
    for seed in (0, 1, 2):
        first, second = over_budget_shares("optuna", seed)
        r_first, r_second = over_budget_shares("random", seed)
        firsts.append(first)
        seconds.append(second)
        randoms.append((r_first + r_second) / 2)
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    assert mean(randoms) > 0.4  # the budget really excludes much of the space
    assert mean(seconds) < mean(firsts)
    assert mean(seconds) < mean(randoms)
    assert mean(seconds) < 0.5 * mean(randoms)


def test_failed_or_diverged_results_are_not_ranked():
    assert objective_values({"val_acc": 0.9, "params": 5, "status": "diverged"}, OBJECTIVES) is None
    assert objective_values({"val_acc": 0.9, "status": "finished"}, OBJECTIVES) is None  # params missing
    assert objective_values({"val_acc": 0.9, "params": 5, "status": "finished"}, OBJECTIVES) == [0.9, 5.0]


@pytest.mark.parametrize("search", ["optuna", "random"])
def test_restored_searcher_continues_the_same_sequence(tmp_path, search):
    straight = [c["config_hash"] for c in run(searcher(search, seed=1), 6)]
    s = searcher(search, seed=1)
    first = [c["config_hash"] for c in run(s, 3)]
    s.save(str(tmp_path / "state.pkl"))
    restored = searcher(search, seed=99)  # whatever it was built with, the saved state wins
    restored.restore(str(tmp_path / "state.pkl"))
    rest = []
    for i in range(3, 6):
        config = restored.suggest(f"t{i}")
        rest.append(config["config_hash"])
        restored.on_trial_complete(f"t{i}", {"val_acc": 0.5 + 0.01 * i, "params": 1000 + i, "status": "finished"})
    assert first + rest == straight
    pickle.dumps(restored)  # Tune pickles searchers with the Tuner


def test_proposals_that_an_override_makes_invalid_are_skipped_not_raised():
    """fold-ablation proposes scratch and warm starts; --set train.freeze=backbone only fits the latter."""
    space = load_space("fold-ablation")
    s = ResNetXSearcher(space, make_proposer("grid", space, OBJECTIVES, 0, 24), OBJECTIVES, 0,
                        overrides={"train": {"freeze": "backbone"}})
    proposed = [s.suggest(f"t{i}") for i in range(30)]
    trained = [p for p in proposed if isinstance(p, dict)]
    assert trained and all(p["experiment"]["train"]["weights"] for p in trained)
    assert s.stats.infeasible == 12  # the 12 from-scratch points


def test_an_errored_trial_rerun_on_resume_records_its_result():
    s = searcher("random", seed=2)
    config = s.suggest("t0")
    s.on_trial_complete("t0", None, error=True)  # the worker died for good: no result
    assert s.results[config["config_hash"]] is None
    s.on_trial_complete("t0", {"val_acc": 0.8, "params": 7, "status": "finished",
                               "config_hash": config["config_hash"]})  # --resume re-ran it
    assert s.results[config["config_hash"]] == [0.8, 7.0]


def test_concurrency_limit_counts_resumed_trials_at_once(tmp_path):
    """Tune resumes the trials that were running at the save: they fill the limit before any new one.

    The restored searcher once counted only trials suggested after the restore, so with a limit
    of 2 and 2 resumed trials it proposed 2 more: 4 ran at once (review of 7bd5730).
    """
    s = searcher("random", seed=4)
    s.set_max_concurrency(2)
    first, second = s.suggest("t1"), s.suggest("t2")
    assert isinstance(first, dict) and isinstance(second, dict)
    assert s.suggest("t3") is None  # at the limit
    path = str(tmp_path / "state.pkl")
    s.save(path)
    restored = searcher("random", seed=4)
    restored.restore(path)
    assert restored.suggest("t3") is None  # t1 and t2 resume: still at the limit
    restored.on_trial_complete("t1", {"val_acc": 0.8, "params": 7, "status": "finished"})
    assert isinstance(restored.suggest("t3"), dict)  # one ended: one new
    assert restored.suggest("t4") is None


def test_a_grid_is_walked_to_its_end_past_max_attempts():
    """max_attempts stops random/Optuna proposals that keep missing; a grid's points are all worth trying."""
    grid_space = parse_space_text(textwrap.dedent(TINY).replace("fold: {choice: [1, 2]}", "fold: {grid: [1, 2]}")
                                  .replace("start_id: {low: fold, high: last_node - 1}", "start_id: {expr: fold}")
                                  .replace("end_id: {low: start_id + 1, high: last_node}", "end_id: {grid: [3, 4]}"),
                                  "grid.yaml")
    s = ResNetXSearcher(grid_space, make_proposer("grid", grid_space, OBJECTIVES, 0, 10), OBJECTIVES, 0,
                        max_attempts=1)
    suggested = [s.suggest(f"t{i}") for i in range(4)]
    # 4 points, 3 networks: fold 1 ignores end_id, so its second point is a duplicate. With
    # max_attempts=1 the searcher used to stop at that first miss and never try fold 2.
    trained = [c for c in suggested if isinstance(c, dict)]
    assert len(trained) == 3 and s.stats.proposed == 4 and s.stats.duplicates == 1


@pytest.mark.parametrize("name", ["quick", "fmnist-bench", "cifar10-pareto"])
def test_optuna_proposes_exactly_the_point_the_searcher_picked(name):
    """``propose_point`` enqueues a point's flat Optuna parameters (named by the space's own walk:
    JSON text for list choices, ``.total`` and parts for depth splits); the next ask must be it."""
    import random

    space = load_space(name)
    proposer = make_proposer("optuna", space, OBJECTIVES, 0, 10)
    for i in range(6):
        point = space.sample(random.Random(i))
        config, token = proposer.propose_point(point)
        assert config == point
        proposer.tell(token, [0.5, 1000.0])
    assert len(proposer.study.trials) == 6


def test_a_repeating_proposer_is_given_untrained_points_until_none_is_left():
    import random

    space = parse_space_text(textwrap.dedent(TINY), "tiny.yaml")
    s = searcher("optuna", space=space, num_samples=50)
    inner, stuck_on = s.proposer, space.sample(random.Random(0))

    class Stuck:  # proposes one network forever, as TPE nearly did on fmnist-bench
        explore, propose_point, tell, tell_infeasible = (inner.explore, inner.propose_point, inner.tell,
                                                         inner.tell_infeasible)

        def propose(self):
            return inner.propose_point(stuck_on)

    s.proposer = Stuck()
    proposals = run(s, 10)
    trained = [p["config_hash"] for p in proposals if isinstance(p, dict)]
    assert len(trained) == len(set(trained)) == 4  # the stuck proposer's one network, then the 3 others
    assert proposals[len(trained)] == Searcher.FINISHED
    assert s.stats.stop_reason == ("every one of the 4 networks of the space was started (4 trained to the end, "
                                   "0 stopped early, 0 failed, 0 running): the space is used up")


@pytest.mark.parametrize("windows, asks", [(0, 3), (1, 1)])
def test_a_windowed_study_explores_after_its_first_repeat(windows, asks):
    """Each ask of a TPE study past its history bound reads ~1,000 trials: once it has cut a window,
    one repeat is enough to draw an untrained point instead (bench/driver_scale.py: 2.7 asks a
    suggestion at 10,000 trials with 3 objectives before); before that, three as always."""
    import random

    space = parse_space_text(textwrap.dedent(TINY), "tiny.yaml")
    s = searcher("optuna", space=space, num_samples=50)
    inner, stuck_on = s.proposer, space.sample(random.Random(0))
    counted = {"asks": 0}

    class Stuck:  # a study that keeps proposing one network, as a large TPE study does more often
        explore, propose_point, tell, tell_infeasible = (inner.explore, inner.propose_point, inner.tell,
                                                         inner.tell_infeasible)

        def propose(self):
            counted["asks"] += 1
            return inner.propose_point(stuck_on)

    stuck = Stuck()
    stuck.windows = windows
    s.proposer = stuck
    run(s, 1)  # trains the stuck network
    counted["asks"] = 0
    second = s.suggest("t-next")
    assert isinstance(second, dict) and counted["asks"] == asks


def test_random_search_under_a_budget_nothing_meets_stops_with_the_reason():
    """Random search raised ConfigError inside Tune's ``suggest`` after 1,000 rejected draws (a crash)."""
    space = tight_quick(max_params=1_000)  # below the smallest network of the space (2,674 parameters)
    s = searcher("random", space=space)
    assert s.suggest("t0") == Searcher.FINISHED
    assert "no valid sample within budget" in s.stats.stop_reason
    assert "raise the budget" in s.stats.stop_reason


def test_a_tight_budget_is_named_as_the_reason_tpe_stops_not_a_used_up_space():
    """TPE's start-up draws uniformly; with a budget that about 1 in 300 draws meets, 200 infeasible
    proposals in a row ended the sweep saying "the space is used up". After a few misses in a row
    the searcher now asks for a random point within budget (as after repeated duplicates), and when
    even those draws find nothing it names the budget."""
    for seed in range(6):
        space = tight_quick(max_params=2_900)
        s = searcher("optuna", seed=seed, space=space, num_samples=30)
        trained = [c for c in run(s, 4) if isinstance(c, dict)]
        assert trained and all(space.cost(c["experiment"]).params <= 2_900 for c in trained)
        reason = s.stats.stop_reason
        assert "used up" not in reason, (seed, reason)
        assert not reason or ("over the budget" in reason and "raise the budget" in reason), (seed, reason)


def test_a_budget_most_draws_meet_keeps_tpe_training():
    """With about 1 in 70 draws within budget, TPE trains one network per suggestion."""
    for seed in range(4):
        space = tight_quick(max_params=3_300)
        s = searcher("optuna", seed=seed, space=space, num_samples=30)
        trained = [c for c in run(s, 4) if isinstance(c, dict)]
        assert len(trained) == 4, (seed, s.stats.stop_reason)
        assert all(space.cost(c["experiment"]).params <= 3_300 for c in trained)


# --- a resume whose searcher state and Tune trial list disagree (the driver killed between the saves)

def _result(i: int) -> dict:
    return {"val_acc": 0.5 + 0.01 * i, "params": 1000 + i, "status": "finished", "epoch": 1}


def _untold(s: ResNetXSearcher) -> set:
    """Optuna trials asked but never told, beyond those of live trials and their waiting duplicates."""
    held = {token for _, token in s.live.values()} | {t for tokens in s.waiting.values() for t in tokens}
    return set(getattr(s.proposer, "asked", {})) - held


def _restored(s_path: str, search: str = "optuna") -> ResNetXSearcher:
    restored = searcher(search, seed=1)
    restored.restore(s_path)
    return restored


@pytest.mark.parametrize("search", ["optuna", "random"])
def test_a_searcher_ahead_of_tunes_trial_list_hands_the_lost_network_out_again(tmp_path, search):
    """The searcher's state was saved after it handed t2 out; Tune's list (saved before) lacks t2.

    Without reconcile, t2's network is never proposed again (the long soak lost one so); with it,
    the next trial Tune asks for gets exactly that config and the proposal counts stay the
    undisturbed sweep's."""
    undisturbed = searcher(search, seed=1)
    straight = [c["config_hash"] for c in run(undisturbed, 5, complete=False)]
    s = searcher(search, seed=1)
    configs = [s.suggest(f"t{i}") for i in range(3)]
    s.save(str(tmp_path / "state.pkl"))
    unreconciled = _restored(str(tmp_path / "state.pkl"), search)
    assert unreconciled.suggest("t9")["config_hash"] != configs[2]["config_hash"]  # t2's network: lost
    restored = _restored(str(tmp_path / "state.pkl"), search)
    mended = restored.reconcile({f"t{i}": RestoredTrial(configs[i], ended=False) for i in range(2)})  # t2 missing
    assert mended == {"handed out again": 1, "adopted": 0, "completed": 0}
    again = restored.suggest("t9")
    assert again == configs[2]  # same network, same seed, under the trial id Tune gave it now
    later = [restored.suggest(f"t{i}")["config_hash"] for i in (3, 4)]
    assert [c["config_hash"] for c in configs] + later == straight
    assert restored.stats == undisturbed.stats
    restored.on_trial_complete("t9", {**_result(2), "config_hash": configs[2]["config_hash"]})
    assert restored.results[configs[2]["config_hash"]] == [0.52, 1002.0]  # told under t9
    assert _untold(restored) == set()  # its proposer trial was told, not left RUNNING


def test_a_searcher_behind_tunes_trial_list_adopts_the_trial_and_trains_its_network_once(tmp_path):
    """Tune's list (saved last) holds t2; the searcher's state, saved before t2 was suggested, does not.

    Without reconcile, the restored searcher proposes t2's network again for a second trial."""
    s = searcher("optuna", seed=1)
    configs = [s.suggest("t0"), s.suggest("t1")]
    s.save(str(tmp_path / "state.pkl"))
    configs.append(s.suggest("t2"))  # the killed driver's last proposal, in Tune's list only
    unreconciled = _restored(str(tmp_path / "state.pkl"))
    assert unreconciled.suggest("t3")["config_hash"] == configs[2]["config_hash"]  # trained twice
    restored = _restored(str(tmp_path / "state.pkl"))
    restored.reconcile({f"t{i}": RestoredTrial(configs[i], ended=False) for i in range(3)})
    assert restored.live["t2"][0] == configs[2]["config_hash"]
    new = restored.suggest("t3")
    assert isinstance(new, dict) and new["config_hash"] != configs[2]["config_hash"]
    assert restored.stats.duplicates == 1  # the re-proposal of t2's network waits for t2's result
    assert restored.stats.proposed == restored.stats.trained + restored.stats.duplicates + restored.stats.infeasible
    restored.on_trial_complete("t2", {**_result(2), "config_hash": configs[2]["config_hash"]})
    assert restored.results[configs[2]["config_hash"]] == [0.52, 1002.0]
    assert _untold(restored) == set()  # the waiting duplicate's Optuna trial was told


def test_a_trial_tune_ended_but_the_searcher_counts_live_frees_its_slot(tmp_path):
    """t0 ended in Tune's list (saved last); the searcher's state still counts it live."""
    s = searcher("random", seed=4)
    s.set_max_concurrency(2)
    configs = [s.suggest("t0"), s.suggest("t1")]
    s.save(str(tmp_path / "state.pkl"))
    restored = searcher("random", seed=4)
    restored.restore(str(tmp_path / "state.pkl"))
    assert restored.suggest("t2") is None  # without reconcile: t0 holds a slot for good
    restored.reconcile({"t0": RestoredTrial(configs[0], ended=True, last_result={**_result(0), "config_hash":
                                                                                  configs[0]["config_hash"]}),
                        "t1": RestoredTrial(configs[1], ended=False)})
    assert restored.results[configs[0]["config_hash"]] == [0.5, 1000.0]
    assert isinstance(restored.suggest("t2"), dict) and restored.suggest("t3") is None


def test_reconcile_changes_nothing_when_the_saves_agree(tmp_path):
    s = searcher("optuna", seed=1)
    configs = [s.suggest(f"t{i}") for i in range(3)]
    s.on_trial_complete("t0", {**_result(0), "config_hash": configs[0]["config_hash"]})
    s.save(str(tmp_path / "state.pkl"))
    restored = _restored(str(tmp_path / "state.pkl"))
    before = pickle.dumps((restored.live, restored.stats, restored.results))
    mended = restored.reconcile({"t0": RestoredTrial(configs[0], ended=True, last_result=_result(0)),
                                 **{f"t{i}": RestoredTrial(configs[i], ended=False) for i in (1, 2)}})
    assert not any(mended.values())
    assert pickle.dumps((restored.live, restored.stats, restored.results)) == before
    assert not restored.requeued
