"""The sweep's pretrain stage and its trials agree on which file a warm trial loads.

The stage trains one network per replicate seed before any trial (``plan_pretrain``); the
searcher then resolves each warm trial's ``train.weights: pretrained`` to a file
(``resolve_pretrained`` as its ``prepare``). Both must name the same file: the searcher once set
the trial's derived seed before resolving, so every warm trial of a replicated space asked for a
file the stage never wrote (found by re-running fold-ablation-fmnist: its first warm trial
failed with "file not found").
"""

from __future__ import annotations

import functools

from reports.pareto import parse_objectives
from search_spaces import load_space
from sweep.search.proposers import make_proposer
from sweep.tune.pretrain import plan_pretrain, resolve_pretrained
from sweep.tune.searcher import ResNetXSearcher


def test_every_warm_trial_loads_a_file_the_pretrain_stage_writes(tmp_path):
    space = load_space("fold-ablation-fmnist")  # 5 replicate seeds, warm and scratch arms, a pretrain stage
    folder = str(tmp_path / "pretrained")
    written = {job.path for job in plan_pretrain(space, {}, folder, sweep_seed=0)}
    assert len(written) == 5  # one fold-1 network per replicate seed
    objectives = parse_objectives("val_acc:max,params:min")
    searcher = ResNetXSearcher(space, make_proposer("grid", space, objectives, 0, 40), objectives, seed=0,
                               prepare=functools.partial(resolve_pretrained, pretrain=space.pretrain,
                                                         folder=folder, sweep_seed=0))
    loaded, seeds = set(), set()
    for i in range(40):
        suggestion = searcher.suggest(f"t{i}")
        weights = suggestion["experiment"]["train"].get("weights")
        seeds.add(suggestion["experiment"]["train"]["seed"])
        if weights is not None:
            loaded.add(weights)
        searcher.on_trial_complete(f"t{i}", {"val_acc": 0.5, "params": 1, "status": "finished"})
    assert loaded == written  # every replicate's warm trials start from that replicate's network
    assert len(seeds) == 40  # and every trial still trains with its own derived seed
