"""Names shared by the writer (``sweep``) and the reader (``reports``) of MLflow runs.

The MLflow store is the source of truth for reports: these names are the contract. Change
them only with a migration note in the changelog.
"""

from __future__ import annotations

# The MLflow experiment sweeps log to and reports read when none is named. Here, not in
# sweep.config, because reports never import sweep; sweep's defaults are this one.
DEFAULT_EXPERIMENT = "resnetx"

# -- tags -----------------------------------------------------------------------------------
TAG_ROLE = "role"  # "sweep" on the parent run, "trial" on child runs, "train" for `resnetx train`
ROLE_SWEEP, ROLE_TRIAL, ROLE_TRAIN = "sweep", "trial", "train"
TAG_PARENT = "mlflow.parentRunId"  # MLflow's own nesting tag
TAG_CONFIG_HASH = "config_hash"  # canonical hash of the trial config (model canonical + data + train, no seed)
# ... followed, where seeds are an axis (replicates, the confirm stage), by this and the seed
SEED_KEY_SEPARATOR = "-seed"
TAG_MODEL_HASH = "model_hash"  # ResNetXConfig.canonical_hash(): same network <=> same hash
TAG_TRIAL_ID = "trial_id"  # Ray Tune trial id
TAG_STATUS = "status"  # one of STATUSES
TAG_SPACE = "space"  # search-space name
TAG_SEARCH = "search"  # optuna | random | grid
TAG_OBJECTIVES = "objectives"  # "val_acc:max,params:min" (parent run)
TAG_SWEEP_SEED = "sweep_seed"
TAG_DATASET = "dataset"
TAG_PARETO_RANK = "pareto_rank"  # written by `resnetx report`: 0 = on the front
TAG_ON_FRONT = "on_front"  # "true" / "false"
# JSON {"objectives": "val_acc:max,params:min", "values": [...], "source": "..."} on the parent run:
# the space's fixed hypervolume reference point (search_spaces.SearchSpace.reference_point)
TAG_HV_REFERENCE = "hv_reference"
# The confirm stage (resnetx confirm): its parent and trial runs carry stage=confirm, its parent
# names the search sweep it confirms; search-stage runs have no stage tag.
TAG_STAGE = "stage"
STAGE_SEARCH, STAGE_CONFIRM = "search", "confirm"
TAG_CONFIRM_OF = "confirm_of"
TAG_SETTINGS = "sweep_settings"  # the sweep's SweepSettings as JSON (parent run): what --resume continues with

STATUS_RUNNING = "running"
STATUS_FINISHED = "finished"
STATUS_STOPPED = "stopped_early"  # ended by the scheduler (ASHA) or a time limit
STATUS_DIVERGED = "diverged"  # NaN/inf loss
STATUS_FAILED = "failed"  # an exception (OOM, bug, storage full, ...)
STATUSES = (STATUS_RUNNING, STATUS_FINISHED, STATUS_STOPPED, STATUS_DIVERGED, STATUS_FAILED)
# Trials whose metrics may stand on a Pareto front: those trained to the end. A trial stopped
# early by a scheduler has fewer epochs; ranking it beside finished ones compares unlike budgets
# (``resnetx report --at-epoch`` ranks every trial at one common epoch instead).
RANKABLE_STATUSES = (STATUS_FINISHED,)
# Trials that ended as they should (not an error): what progress counts as "ok".
COMPLETED_STATUSES = (STATUS_FINISHED, STATUS_STOPPED)

# -- metrics --------------------------------------------------------------------------------
# Per epoch (step = epoch number, starting at 1):
EPOCH_METRICS = ("val_acc", "val_loss", "train_loss", "epoch_time_s", "images_per_s", "lr", "tse")
# "tse": the sum of the training losses of epochs 1..e (Ru et al., arXiv 2006.04492), what
# ``--rung-metric tse`` ranks a rung by; on both recorded benchmarks it ranks networks by their
# final accuracy far better than early val_acc (bench/fidelity.py, docs/benchmarks.md).
TSE_METRIC = "tse"


def training_loss_sum(train_losses: list[float]) -> float:
    """TSE after the epochs whose mean training losses are ``train_losses`` (one rule for every trainable)."""
    return float(sum(train_losses))
# Once per trial, at the end:
FINAL_METRICS = ("best_val_acc", "params", "flops", "latency_ms", "test_acc", "train_time_s")
EPOCHS_METRIC = "epochs"  # final metric: the epochs a trial trained (where a stopped trial stopped)
# How latency_ms was measured (sweep.training.costs), logged beside it when it is measured.
LATENCY_METHOD_METRICS = ("latency_iqr_ms", "latency_batch", "latency_threads", "latency_repeats")

# -- params and artifacts -----------------------------------------------------------------
# Child runs log the flattened experiment config as params: "model.fold", "train.lr", ...
PARAM_DATA_PATH = "data_path"  # resident | stream: how the trial fed its data (sweep.data.stream)
CONFIG_ARTIFACT = "config.yaml"  # the full experiment config of a trial (plain YAML)
REPORT_ARTIFACT_DIR = "report"  # where `resnetx report` logs its files on the parent run

# -- params read by reports (added with issue 6) ---------------------------------------------
FOLD_PARAM = "model.fold"
UNIT_PARAM = "model.unit"
SEED_PARAM = "train.seed"
# Any of these params, when set to something other than none/scratch/false, marks a
# warm-started trial (torchvision weights); the fold ablation splits on it.
WARM_START_PARAMS = ("train.weights", "train.pretrained", "train.init", "model.weights", "train.warm_start")
# The metric that parameter budgets are measured in.
PARAMS_METRIC = "params"


def shown_uri(uri: str) -> str:
    """A tracking URI fit to print, log as a param, or write into a report or an export: no password.

    A team's database URI may carry one (``postgresql://user:SECRET@db/mlflow``, or libpq's
    ``?password=SECRET``); what is written into the store, a report or an exported YAML is read by
    everyone who can read the runs. The user name, host and database stay, so it still says which store.
    """
    import re

    uri = re.sub(r"(//[^@/:?#]*):[^/?#]*@", r"\1:***@", uri)  # up to the last @ of the user info
    return re.sub(r"([?&]password=)[^&#]*", r"\1***", uri, flags=re.IGNORECASE)
