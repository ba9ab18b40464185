"""What a sweep needs, checked before Ray starts and before its MLflow parent run opens.

Without these checks a sweep that can never train anything still starts a Ray runtime, opens
a parent run and schedules trials that each fail the same way (every trial of
``fold-ablation`` offline fails to download the same ImageNet weights). ``check_can_start``
raises the one-line :class:`ConfigError` a user sees instead; it costs a HEAD request (5 s at
most) per weights file that is not cached, nothing else of note. What is checked:

- **torchvision weights** every trial may warm-start from (``train.weights`` of the space, of
  its pretrain stage, or of ``--set``): in torch's hub cache, or downloadable now (one HEAD
  request); a ``.pth`` path must be a file. Local runs only: on a cluster (``--address``) the
  trials download on their own nodes, whose cache and network the driver cannot see.
- **resources** of a local runtime: ``--cpus-per-trial`` within this machine's CPUs and
  ``--gpus-per-trial`` within the GPUs torch sees (Tune would otherwise wait forever).

Checked elsewhere before Ray starts: the dataset every trial shares is loaded by the runner
itself (``runner.shared_data``); objectives, ``--set`` overrides and an image folder's
``train/<class>/`` layout (which ``imagefolder`` configs need for their class count) by
``plan_sweep``.
"""

from __future__ import annotations

import os
import random
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from resnetx.errors import ConfigError

HEAD_TIMEOUT_S = 5.0
WEIGHT_FILE_SUFFIXES = (".pth", ".pt", ".bin")


def check_can_start(plan: Any) -> None:
    """Raise ConfigError when the planned sweep (a ``runner.SweepPlan``) cannot run a single trial."""
    local = not plan.settings.address
    if local:
        check_local_resources(plan.settings.cpus_per_trial, plan.settings.gpus_per_trial)
        for source in weight_sources(plan):
            check_weights(source)


# -- resources ------------------------------------------------------------------------------


def local_cpus() -> int:
    """CPUs this process may run on (the affinity mask, as Ray's local runtime counts them)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def check_local_resources(cpus_per_trial: float, gpus_per_trial: float) -> None:
    cpus = local_cpus()
    if cpus_per_trial > cpus:
        raise ConfigError("--cpus-per-trial", cpus_per_trial, f"exceeds this machine's {cpus} CPUs: no trial "
                          "could ever start (use --address to run on a cluster)")
    if gpus_per_trial > 0:
        import torch

        gpus = torch.cuda.device_count()
        if gpus_per_trial > gpus:
            raise ConfigError("--gpus-per-trial", gpus_per_trial, f"exceeds the {gpus} GPU(s) torch sees on this "
                              "machine: no trial could ever start (use 0, or --address a cluster with GPUs)")


# -- weights --------------------------------------------------------------------------------


def weight_sources(plan: Any) -> list[str]:
    """Every ``train.weights`` value a trial (or the pretrain stage) of this sweep may use, minus
    ``pretrained`` (the sweep's own stage) and null."""
    values: list[Any] = []
    overrides = plan.overrides.get("train", {})
    if "weights" in overrides:
        values.append(overrides["weights"])
    else:
        values.extend(_field_values(plan.space, "train.weights"))
    pretrain = (plan.space.pretrain or {}).get("train", {})
    values.append(pretrain.get("weights"))
    found = [v for v in values if isinstance(v, str) and v and v != "pretrained"]
    return list(dict.fromkeys(found))


def _field_values(space: Any, name: str) -> list[Any]:
    """The values a space field can take: listed or matched values, else those of 64 seeded samples."""
    from search_spaces.params import Match

    try:
        param = space.field(name)
    except KeyError:
        return []
    if isinstance(param, Match):
        return [c.value for c in param.cases] + ([param.default] if param.has_default else [])
    try:
        options = param.options({})
    except (KeyError, TypeError, ValueError):  # depends on other fields: draw instead
        options = None
    if options is not None:
        return list(options)
    rng = random.Random(0)
    section, key = name.split(".", 1)
    return [space.sample(rng).get(section, {}).get(key) for _ in range(64)]


def hub_checkpoint(url: str) -> Path:
    """Where ``torch.hub.load_state_dict_from_url`` keeps (and first looks for) ``url``'s file."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urllib.request.urlparse(url).path)


def check_weights(source: str) -> None:
    """A weights file exists; a torchvision weights name is cached or can be downloaded now."""
    path = Path(source).expanduser()
    if path.suffix in WEIGHT_FILE_SUFFIXES or path.exists():
        if not path.is_file():
            raise ConfigError("train.weights", source, "file not found; pass a .pth state dict "
                              "(torchvision or ResNetX layout)")
        return
    from torchvision import models

    try:
        weights = models.get_weight(source) if "_Weights." in source else models.get_model_weights(source).DEFAULT
    except (ValueError, KeyError, AttributeError):
        raise ConfigError("train.weights", source, "must be a .pth file or a torchvision weights name such as "
                          "ResNet50_Weights.IMAGENET1K_V2") from None
    cached = hub_checkpoint(weights.url)
    if cached.is_file():
        return
    try:
        with urllib.request.urlopen(urllib.request.Request(weights.url, method="HEAD"), timeout=HEAD_TIMEOUT_S):
            return
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ConfigError("train.weights", source, f"is not in torch's cache ({cached}) and cannot be downloaded "
                          f"({type(exc).__name__}: {reason}); fetch it once where there is a network "
                          "and copy it there, or pass a local .pth file") from None
