"""Train one experiment config: plain PyTorch, no Ray (the Ray trainable calls this).

Why it is fast: when the data fits (the *resident* path), the training and validation splits
live on the training device as uint8 tensors; each step gathers a batch by index, crops/flips it
with one gather (``sweep.data.augment``) and normalises it on the device. No DataLoader, no
worker processes, no per-image Python. On CUDA the loop never waits for the GPU except to check
for divergence every few steps and once per epoch. The test split goes to the device only when
it is evaluated (``train.evaluate_test``), after training, and is freed afterwards.

Data larger than the limit (``data.loader``/``data.resident_limit_mb``, chosen by
``sweep.data.stream.choose_path``) is *streamed*: a DataLoader's workers crop/flip batches on the
CPU with the same augmentation and hand them over pinned; the device holds one batch at a time.
The choice is ``TrainResult.info["data_path"]`` (``resident``/``stream``); :func:`data_plan`
gives it before training, for a caller that logs it up front.

Resume: the resident path continues bit-exactly (the device generator's state is checkpointed);
the streaming path is exact at epoch boundaries, which is where checkpoints are written (its
order and crops are seeded by ``train.seed``, epoch and batch index).

Contract (docs/architecture.md): after every epoch the metrics dict (keys :data:`EPOCH_KEYS`)
is computed, the checkpoint is written (atomically, when a folder is given), then
``on_epoch(metrics, checkpoint_dir_or_None)`` is called. NaN/inf loss stops training within
the epoch: that epoch is reported with non-finite losses and ``val_acc = 0``, no checkpoint
is written for it, and the result's status is ``"diverged"``.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reports import schema
from resnetx import build_model, load_torchvision_weights
from resnetx.errors import ConfigError
from sweep.config.experiment import ExperimentConfig, TrainConfig
from sweep.data.augment import BatchAugment, default_padding, normalizer, to_input
from sweep.data.load import DatasetBundle, load_dataset
from sweep.data.stream import PATH_STREAM, DataPlan, StreamedBundle, choose_path, move_resident
from sweep.training.checkpoint import capture_rng, checkpoint_path, load_checkpoint, restore_rng, save_checkpoint
from sweep.training.costs import measure_costs, numeric

EPOCH_KEYS = ("epoch", "train_loss", "val_loss", "val_acc", "epoch_time_s", "images_per_s", "lr", schema.TSE_METRIC)
STATUS_FINISHED, STATUS_DIVERGED = schema.STATUS_FINISHED, schema.STATUS_DIVERGED  # the MLflow contract's names
EpochCallback = Callable[[dict[str, float], Path | None], None]


@dataclass
class TrainResult:
    """``status`` is ``finished`` or ``diverged``; ``final`` uses reports.schema's FINAL_METRICS names."""

    status: str
    history: list[dict[str, float]]
    final: dict[str, float]
    checkpoint: Path | None = None  # the last checkpoint file written, if any
    info: dict[str, Any] = field(default_factory=dict)  # device, precision, warm start, data path (DataPlan.info)


# -- pure pieces --------------------------------------------------------------------------
def lr_at(cfg: TrainConfig, epochs_done: float) -> float:
    """Learning rate after ``epochs_done`` (fractional) epochs: linear warm-up, then the schedule."""
    if cfg.warmup_epochs > 0 and epochs_done < cfg.warmup_epochs:
        return cfg.lr * epochs_done / cfg.warmup_epochs
    span = cfg.epochs - cfg.warmup_epochs
    progress = min(1.0, (epochs_done - cfg.warmup_epochs) / span) if span > 0 else 1.0
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * progress))
    if cfg.schedule == "linear":
        return cfg.lr * (1.0 - progress)
    if cfg.schedule == "step":  # the classic ResNet decay: /10 at 50% and at 75% of training
        return cfg.lr * 0.1 ** ((progress >= 0.5) + (progress >= 0.75))
    return cfg.lr


def resolve_device(spec: str) -> torch.device:
    """``auto`` is CUDA when present, else the CPU; asking for an absent device is a ConfigError."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("train.device", spec, "CUDA is not available here; use cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError("train.device", spec, f"only {torch.cuda.device_count()} CUDA device(s) here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("train.device", spec, "MPS is not available here; use cpu or auto")
    return device


def amp_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """Mixed precision only on CUDA: bfloat16 where supported (no loss scaling), else float16."""
    if device.type != "cuda" or cfg.amp is False:
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_optimizer(params: list[nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                           nesterov=cfg.nesterov and cfg.momentum > 0)


def check_bundle(cfg: ExperimentConfig, data: DatasetBundle) -> None:
    """A bundle passed in must be the one this config describes."""
    if data.num_classes != cfg.model.num_classes or data.in_channels != cfg.model.in_channels:
        raise ConfigError("model.num_classes", cfg.model.num_classes,
                          f"data has {data.num_classes} classes and {data.in_channels} channels "
                          f"(model expects {cfg.model.num_classes} and {cfg.model.in_channels})")
    if data.image_size != cfg.data.effective_image_size:
        raise ConfigError("data.image_size", cfg.data.effective_image_size,
                          f"the dataset passed in was loaded at {data.image_size}")
    if cfg.train.evaluate_test and len(data.test_y) == 0:
        raise ConfigError("train.evaluate_test", True, f"{data.name} here has no test split")


def _device_tensor(array: np.ndarray, device: torch.device) -> Tensor:
    with warnings.catch_warnings():  # arrays from Ray's object store are read-only; we never write
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(array).to(device)


def train_mode_keeping_frozen_norms(model: nn.Module) -> None:
    """``model.train()``, then every batch norm whose affine parameters are frozen back to eval mode.

    ``requires_grad=False`` stops the optimizer, not the running mean/variance updates that a
    batch norm makes in training mode: a frozen backbone's loaded statistics would drift while
    the head fine-tunes. Frozen norms therefore normalise with their loaded statistics, as
    torchvision's detection backbones (``FrozenBatchNorm2d``) and timm's ``freeze_batch_norm_2d`` do.
    """
    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            params = [p for p in (module.weight, module.bias) if p is not None]
            if params and not any(p.requires_grad for p in params):
                module.eval()


def config_differences(old: ExperimentConfig, new: ExperimentConfig) -> dict[str, tuple[Any, Any]]:
    """The canonical fields (``train.lr``, ``data.subset``, ...) whose values differ: {field: (old, new)}."""
    from sweep.config.overrides import flatten

    before, after = flatten(old.canonical()), flatten(new.canonical())
    return {k: (before.get(k), after.get(k)) for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)}


def check_resumable(state: dict[str, Any], cfg: ExperimentConfig, where: str, extend_epochs: bool) -> None:
    """Refuse a checkpoint written for another config: the schedule would continue at the wrong point.

    Only ``train.epochs`` may differ, and only when asked (``extend_epochs``): the run then
    continues to the new length, its schedule stretched to it.
    """
    if state.get("model_hash") != cfg.model.canonical_hash():
        raise ConfigError("--resume", where, f"was written for model {state.get('model_hash')}; "
                          f"this config builds {cfg.model.canonical_hash()}")
    if state.get("config_hash") in (None, cfg.config_hash()):
        return
    old = ExperimentConfig.from_yaml(state["config_yaml"]) if state.get("config_yaml") else None
    diffs: dict[str, tuple[Any, Any]] = (config_differences(old, cfg) if old is not None
                                         else {"config_hash": (state.get("config_hash"), cfg.config_hash())})
    if extend_epochs and set(diffs) == {"train.epochs"} and diffs["train.epochs"][1] > int(state["epoch"]):
        return
    shown = ", ".join(f"{k} {a} -> {b}" for k, a, b in ((k, *v) for k, v in diffs.items()))
    raise ConfigError("--resume", where, f"was written for another config: {shown} (only a longer train.epochs "
                      "may continue, with --extend-epochs)")


def data_plan(cfg: ExperimentConfig, data: DatasetBundle, device: torch.device | None = None,
              gpu_share: float = 1.0) -> DataPlan:
    """How :func:`train` will feed ``data`` to ``device`` (default: ``train.device`` resolved).

    ``gpu_share``: the part of the device this run owns (a Ray trial's GPUs; see ``sweep.data.stream``)."""
    device = device if device is not None else resolve_device(cfg.train.device)
    return choose_path(cfg.data, data, device, cfg.train.evaluate_test, gpu_share=gpu_share)


# -- the loop -----------------------------------------------------------------------------
class _Loop:
    """Model, optimizer, data (resident on the device, or streamed) and random stream of one training run.

    Resident: ``train_x``/``train_y``/``val_x``/``val_y`` are device tensors and ``stream`` is None.
    Streaming: those four are None and ``stream`` holds the DataLoaders. ``test_x``/``test_y`` stay
    None until :meth:`evaluate_test` moves the test split (resident) and are dropped after it.
    """

    def __init__(self, cfg: ExperimentConfig, data: DatasetBundle, device: torch.device,
                 plan: DataPlan | None = None) -> None:
        self.cfg, self.tc, self.device, self.data = cfg, cfg.train, device, data
        self.plan = plan if plan is not None else choose_path(cfg.data, data, device, cfg.train.evaluate_test)
        seed_everything(self.tc.seed)
        self.model = build_model(cfg.model)  # built on the CPU: the same initial weights on any device
        self.warm_start = ""
        if self.tc.weights:
            try:
                report = load_torchvision_weights(self.model, self.tc.weights, self.tc.freeze)
            except ConfigError as exc:
                raise ConfigError(f"train.{exc.field}", exc.value, exc.allowed) from None
            self.warm_start = report.summary()
        self.model.to(device)
        if self.tc.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.runner: Callable[[Tensor], Tensor] = torch.compile(self.model) if self.tc.compile else self.model
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        if not trainable:
            raise ConfigError("train.freeze", self.tc.freeze, "leaves no parameter to train")
        self.optimizer = make_optimizer(trainable, self.tc)
        self.amp = amp_dtype(self.tc, device)
        self.scaler = torch.amp.GradScaler("cuda") if self.amp == torch.float16 else None
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(self.tc.seed)
        self.shift, self.scale = normalizer(data.mean, data.std, device)
        self.augment = BatchAugment(default_padding(data.image_size), data.hflip) if cfg.data.augment else None
        n, bs = len(data.train_y), self.tc.batch_size
        # A last batch of one image would break batch norm; drop it rather than crash.
        self.steps_per_epoch = max(1, n // bs + (1 if n % bs > 1 else 0))
        self.eval_batch_size = max(2 * bs, 256)
        self.train_x: Tensor | None = None
        self.train_y: Tensor | None = None
        self.val_x: Tensor | None = None
        self.val_y: Tensor | None = None
        self.test_x: Tensor | None = None
        self.test_y: Tensor | None = None
        self.stream: StreamedBundle | None = None
        if self.plan.path != PATH_STREAM:  # out of memory on the way: streamed instead (move_resident)
            moved, self.plan = move_resident(self.plan, (data.train_x, data.train_y, data.val_x, data.val_y),
                                             lambda a: _device_tensor(a, device), device, cfg.data.workers)
            if moved is not None:
                self.train_x, self.train_y, self.val_x, self.val_y = moved
        if self.plan.path == PATH_STREAM:
            self.stream = self._stream(self.plan.workers)
        self.step = 0
        self.check_every = 1 if device.type == "cpu" else 25  # a CPU loss check costs nothing

    def _stream(self, workers: int) -> StreamedBundle:
        return StreamedBundle(self.data, batch_size=self.tc.batch_size, steps_per_epoch=self.steps_per_epoch,
                              eval_batch_size=self.eval_batch_size, seed=self.tc.seed, augment=self.augment,
                              workers=workers, pin_memory=self.device.type == "cuda")

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp)

    def _input(self, x: Tensor) -> Tensor:
        return to_input(x, self.shift, self.scale, self.tc.channels_last)

    def train_mode(self) -> None:
        """Training mode, except for frozen batch norms (see :func:`train_mode_keeping_frozen_norms`)."""
        train_mode_keeping_frozen_norms(self.model)

    def _resident_batches(self) -> Iterator[tuple[Tensor, Tensor]]:
        """The epoch's augmented batches, gathered on the device (one generator: exact resume)."""
        assert self.train_x is not None and self.train_y is not None
        bs = self.tc.batch_size
        perm = torch.randperm(len(self.train_y), generator=self.generator, device=self.device)
        for i in range(self.steps_per_epoch):
            idx = perm[i * bs:(i + 1) * bs]
            x, y = self.train_x.index_select(0, idx), self.train_y.index_select(0, idx)
            if self.augment is not None:
                x = self.augment(x, self.generator)
            yield x, y

    def _streamed(self, batches: Iterable[tuple[Tensor, Tensor]]) -> Iterator[tuple[Tensor, Tensor]]:
        """Batches of a DataLoader moved to the device (asynchronously from pinned memory on CUDA)."""
        for x, y in batches:
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def train_epoch(self, epoch: int = 0) -> tuple[float, int, float]:
        """One pass over the training set: (mean loss, images seen, last lr). Stops early on NaN/inf.

        ``epoch`` (1-based) seeds the streaming path's order and crops; the resident path ignores it.
        """
        tc = self.tc
        self.train_mode()
        batches = (self._streamed(self.stream.train_batches(epoch)) if self.stream is not None
                   else self._resident_batches())
        loss_sum = torch.zeros((), device=self.device)
        seen, lr = 0, self.optimizer.param_groups[0]["lr"]
        for i, (x, y) in enumerate(batches):
            lr = lr_at(tc, (self.step + 0.5) / self.steps_per_epoch)  # mid-step: no zero-lr step
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            with self._autocast():
                loss = F.cross_entropy(self.runner(self._input(x)), y, label_smoothing=tc.label_smoothing)
            self.optimizer.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.unscale_(self.optimizer)
            else:
                loss.backward()
            if tc.grad_clip is not None:
                nn.utils.clip_grad_norm_(self.model.parameters(), tc.grad_clip)
            if self.scaler is not None:
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                self.optimizer.step()
            self.step += 1
            loss_sum += loss.detach().float() * len(y)
            seen += len(y)
            if (i + 1) % self.check_every == 0 and not math.isfinite(loss_sum.item()):
                break
        return loss_sum.item() / max(seen, 1), seen, lr

    def _chunks(self, x_all: Tensor, y_all: Tensor) -> Iterator[tuple[Tensor, Tensor]]:
        size = self.eval_batch_size
        for start in range(0, len(y_all), size):
            yield x_all[start:start + size], y_all[start:start + size]

    def evaluate(self, batches: Iterable[tuple[Tensor, Tensor]]) -> tuple[float, float]:
        """(mean cross-entropy without label smoothing, accuracy) in eval mode over device ``batches``."""
        self.model.eval()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.int64)
        n = 0
        with torch.no_grad(), self._autocast():
            for x, y in batches:
                logits = self.runner(self._input(x)).float()
                loss_sum += F.cross_entropy(logits, y, reduction="sum")
                correct += (logits.argmax(1) == y).sum()
                n += len(y)
        self.train_mode()
        n = max(n, 1)
        return loss_sum.item() / n, correct.item() / n

    def evaluate_val(self) -> tuple[float, float]:
        if self.stream is not None:
            return self.evaluate(self._streamed(self.stream.eval_batches("val")))
        assert self.val_x is not None and self.val_y is not None
        return self.evaluate(self._chunks(self.val_x, self.val_y))

    def evaluate_test(self) -> tuple[float, float]:
        """The test split, moved to the device only now (resident) and dropped after; streamed otherwise."""
        if self.stream is not None:
            return self.evaluate(self._streamed(self.stream.eval_batches("test")))
        moved, plan = move_resident(self.plan, (self.data.test_x, self.data.test_y),
                                    lambda a: _device_tensor(a, self.device), self.device, self.cfg.data.workers)
        if moved is None:  # out of memory: the test split alone is streamed
            return self.evaluate(self._streamed(self._stream(plan.workers).eval_batches("test")))
        self.test_x, self.test_y = moved
        try:
            return self.evaluate(self._chunks(self.test_x, self.test_y))
        finally:
            self.test_x = self.test_y = None

    def state(self, epoch: int, history: list[dict[str, float]]) -> dict[str, Any]:
        return {
            "epoch": epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": {"step": self.step, "steps_per_epoch": self.steps_per_epoch},
            "data_path": self.plan.path,  # informative: a run may resume on the other path (not exactly)
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": capture_rng(self.generator),
            "history": [dict(h) for h in history],
            "config_hash": self.cfg.config_hash(),
            "model_hash": self.cfg.model.canonical_hash(),
            "config_yaml": self.cfg.to_yaml(),
        }

    def load(self, state: dict[str, Any], where: str, extend_epochs: bool = False) -> tuple[int, list[dict]]:
        check_resumable(state, self.cfg, where, extend_epochs)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["scheduler"]["step"])
        restore_rng(state["rng"], self.generator)
        return int(state["epoch"]), [dict(h) for h in state["history"]]


def setup_torch(tc: TrainConfig) -> torch.device:
    """Process-wide torch settings for training with ``tc``; call once before :func:`train`.

    Explicit, not inside ``train()``: they change every later computation of the process (the
    thread count, cuDNN autotuning, TF32 matmuls on CUDA), which a library call must not do
    behind its caller's back. ``resnetx train`` and the Ray trainable call it.
    """
    if tc.num_threads is not None:
        torch.set_num_threads(tc.num_threads)
    device = resolve_device(tc.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    return device


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train(
    cfg: ExperimentConfig,
    *,
    data: DatasetBundle | None = None,
    on_epoch: EpochCallback | None = None,
    checkpoint_dir: str | Path | None = None,
    resume_from: str | Path | None = None,
    extend_epochs: bool = False,
    costs: dict[str, Any] | None = None,
    measure_latency: bool = True,
    plan: DataPlan | None = None,
) -> TrainResult:
    """Train ``cfg`` (loading its dataset unless ``data`` is given) and return the result.

    ``resume_from`` (a folder holding ``checkpoint.pt``, or the file) continues exactly where
    that checkpoint stopped; ``checkpoint_dir`` receives ``checkpoint.pt`` every
    ``train.checkpoint_every`` epochs and after the last one. A checkpoint of another config
    is refused, naming the fields that differ; ``extend_epochs`` lets only ``train.epochs`` grow.
    ``costs`` (params, FLOPs, latency) measured by the caller are reported as they are, not
    measured again; otherwise they are measured once at the end (latency if ``measure_latency``).
    ``plan``: how the data reaches the device, from :func:`data_plan` (default: ``data_plan(cfg, data)``).
    """
    tc = cfg.train
    device = resolve_device(tc.device)
    data = data if data is not None else load_dataset(cfg.data)
    check_bundle(cfg, data)
    loop = _Loop(cfg, data, device, plan if plan is not None else data_plan(cfg, data, device))
    start_epoch, history = 0, list[dict[str, float]]()
    if resume_from is not None:
        start_epoch, history = loop.load(load_checkpoint(resume_from), str(resume_from), extend_epochs)
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else None
    last_file = checkpoint_path(resume_from) if resume_from is not None else None
    status = STATUS_FINISHED
    test_acc: float | None = None
    for epoch in range(start_epoch + 1, tc.epochs + 1):
        _sync(device)
        started = time.perf_counter()
        train_loss, seen, lr = loop.train_epoch(epoch)
        _sync(device)
        train_time = time.perf_counter() - started
        diverged = not math.isfinite(train_loss)
        val_loss, val_acc = (math.nan, 0.0) if diverged else loop.evaluate_val()
        metrics = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "val_acc": val_acc,
                   "epoch_time_s": time.perf_counter() - started,
                   "images_per_s": seen / train_time if train_time > 0 else 0.0, "lr": lr,
                   schema.TSE_METRIC: schema.training_loss_sum([*(h["train_loss"] for h in history), train_loss])}
        history.append(metrics)
        written = None
        if not diverged and folder is not None and (epoch % tc.checkpoint_every == 0 or epoch == tc.epochs):
            last_file = save_checkpoint(folder, loop.state(epoch, history))
            written = folder
        if tc.evaluate_test and not diverged and epoch == tc.epochs:
            # In the last epoch's own report: a scheduler that stops a trial at that report (a
            # rung on the last epoch) cannot lose it, and Tune sees the last epoch once.
            test_acc = loop.evaluate_test()[1]
        if on_epoch is not None:
            on_epoch(dict(metrics) if test_acc is None else {**metrics, "test_acc": test_acc}, written)
        if diverged:
            status = STATUS_DIVERGED
            break
    if costs is None:
        costs = numeric(measure_costs(loop.model, data.input_shape, device, latency=measure_latency))
    final = _final_metrics(history, costs, test_acc if status == STATUS_FINISHED else None)
    info = {"device": str(device), "amp": str(loop.amp).removeprefix("torch.") if loop.amp else "off",
            "warm_start": loop.warm_start, "data": data.summary(), **loop.plan.info()}
    return TrainResult(status, history, final, last_file, info)


def _final_metrics(history: list[dict[str, float]], costs: dict[str, Any],
                   test_acc: float | None) -> dict[str, float]:
    """The once-per-run numbers (reports.schema.FINAL_METRICS): FLOPs are forward, 2 per multiply-add."""
    accs = [h["val_acc"] for h in history]
    final: dict[str, float] = {
        "best_val_acc": max(accs, default=0.0),
        "val_acc": accs[-1] if accs else 0.0,
        **{k: float(v) for k, v in costs.items() if isinstance(v, (int, float))},
        "train_time_s": float(sum(h["epoch_time_s"] for h in history)),
    }
    if test_acc is not None:  # not for a diverged network: its predictions mean nothing
        final["test_acc"] = test_acc
    return final
