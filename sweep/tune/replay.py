"""``--trainable replay --record FILE``: a normal sweep whose trials report recorded epochs instead of training.

Everything but the training is the real sweep: the searcher proposes, de-duplicates and keeps
budgets, ASHA or MO-ASHA stop trials at their rungs, every trial is an MLflow run with its
per-epoch metrics, and the report ranks the front. A trial looks its network up in the record
(by its trial key, the runs' ``config_hash``) and reports that network's epochs one by one,
without sleeping; its ``epoch_time_s`` and ``train_time_s`` are the recorded ones, the *simulated*
cost (a replayed sweep's compute is the sum of the epoch times of every epoch its trials ran).
A network recorded with several seeds replays the replicate trained with the trial's seed when
there is one, else the record's first.

The record is read once on the driver, checked against the sweep's space before Ray starts (same
space, same definition hash, the example trial's network in it: a ``--set`` that changes how
networks train is refused there), and travels to the trials with ``tune.with_parameters``. A
proposal outside the record still ends its trial as ``failed`` with an error naming the network.
"""

from __future__ import annotations

from typing import Any

from reports import schema
from reports.schema import STATUS_FINISHED, STATUS_RUNNING
from resnetx.errors import ConfigError
from sweep.tracking.record import Record, read_record
from sweep.tune.trainable import failure_report

SIMULATED_KEY = "simulated"  # 1.0 in every replayed report: the epoch times are the record's, not measured


def replay_options(plan: Any) -> Record:
    """The record a replayed sweep reads, checked against the sweep's space (runs on the driver)."""
    path = plan.settings.record
    if not path:
        raise ConfigError("--record", "none", "--trainable replay needs --record FILE (a `resnetx record` file)")
    record = read_record(path)
    check_matches(record, plan.space, path)
    key = example_key(plan)
    if key not in record:
        raise ConfigError("--set", " ".join(plan.settings.sets) or "(none)",
                          f"the trials' network {key} is not in the record {path}: a replay replays the record's "
                          "networks trained as recorded (no --set that changes model, data or training)")
    return record


def check_matches(record: Record, space: Any, path: str) -> None:
    """The sweep's space is the record's: same name, same definition (model/data/train sections)."""
    if record.space != space.name:
        raise ConfigError("--space", space.name, f"the record {path} is of space {record.space!r}; replay that space")
    recorded = record.provenance.get("space_definition_sha256")
    if recorded and recorded != space.definition_hash():
        raise ConfigError("--space", space.name, f"has changed since the record {path} was made (definition hash "
                          f"{space.definition_hash()[:12]}, recorded {str(recorded)[:12]}); record it again")


def example_key(plan: Any) -> str:
    from sweep.config.experiment import trial_key

    return trial_key(plan.example.to_dict(), plan.space.seed_is_axis)


def replay_reports(record: Record, key: str, seed: int | None, epochs: int) -> list[dict[str, Any]]:
    """What a replayed trial reports, epoch by epoch (pure: the replay trainable and its tests use it)."""
    curve = record.curve(key, seed)
    if epochs > int(curve["epoch"].max()):
        raise ConfigError("train.epochs", epochs, f"the record holds {int(curve['epoch'].max())} epochs of {key}")
    reports, elapsed, best, losses = [], 0.0, float("-inf"), list[float]()
    for row in curve[curve["epoch"] <= epochs].to_dict("records"):
        elapsed += float(row["epoch_time_s"])
        losses.append(float(row["train_loss"]))
        best = max(best, float(row["val_acc"]))
        reports.append({"epoch": int(row["epoch"]), "val_acc": float(row["val_acc"]),
                        "val_loss": float(row["val_loss"]), "train_loss": float(row["train_loss"]),
                        schema.TSE_METRIC: schema.training_loss_sum(losses),
                        "epoch_time_s": float(row["epoch_time_s"]), "params": float(row["params"]),
                        "flops": float(row["flops"]), "latency_ms": float(row["latency_ms"]),
                        "best_val_acc": best, "train_time_s": elapsed, SIMULATED_KEY: 1.0,
                        "status": STATUS_FINISHED if int(row["epoch"]) >= epochs else STATUS_RUNNING})
    return reports


def replay_trial(config: dict, options: Record | None = None) -> None:
    """The Tune function trainable of a replayed sweep (``options``: the record, from the driver)."""
    import ray
    from ray import tune

    base = {"config_hash": config.get("config_hash", ""), "node_id": ray.get_runtime_context().get_node_id()}
    train = (config.get("experiment") or {}).get("train") or {}
    try:
        if options is None:
            raise ConfigError("--record", "none", "the replay trainable was started without its record")
        reports = replay_reports(options, base["config_hash"], train.get("seed"), int(train.get("epochs", 0)))
    except ConfigError as exc:
        tune.report(failure_report(base, {}, exc) or {})
        return
    for report in reports:  # no checkpoint: a retried or resumed replay simply replays again
        tune.report({**base, **report})
