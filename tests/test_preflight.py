"""sweep.tune.preflight: what a sweep needs, checked before Ray starts (no Ray, no MLflow here).

The network is made unreachable for real, not mocked: ``https_proxy`` points at a closed local
port, so urllib's HEAD request is refused at once, exactly as on an offline machine. torch's
hub cache is a temporary folder (``TORCH_HOME``), so "cached" means a file the test put there.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from resnetx.errors import ConfigError
from sweep.config.settings import SweepSettings
from sweep.tune.preflight import (
    check_can_start,
    check_local_resources,
    check_weights,
    hub_checkpoint,
    local_cpus,
    weight_sources,
)
from sweep.tune.runner import plan_sweep

RESNET18 = "ResNet18_Weights.IMAGENET1K_V1"


@pytest.fixture()
def offline(monkeypatch, tmp_path) -> Path:
    """No network (a proxy that refuses every connection) and an empty torch hub cache."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nothing listens once the socket is closed
    for name in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{closed}")
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    # urllib builds its global opener, proxies included, at the first urlopen and keeps it: without
    # this, every later urlopen of the session (the mlflow server health checks of test_sweep and
    # test_ui) went to the closed proxy and failed with "connection refused" (measured in a full run).
    import urllib.request

    monkeypatch.setattr(urllib.request, "_opener", None)
    return tmp_path / "torch"


def test_torchvision_weights_must_be_cached_or_downloadable(offline):
    from torchvision.models import ResNet18_Weights

    cached = hub_checkpoint(ResNet18_Weights.IMAGENET1K_V1.url)
    assert cached == offline / "hub" / "checkpoints" / "resnet18-f37072fd.pth"  # torchvision's own file name
    with pytest.raises(ConfigError, match=rf"^train\.weights: got '{RESNET18}'; is not in torch's cache "
                                          rf"\({cached}\) and cannot be downloaded \(URLError"):
        check_weights(RESNET18)
    with pytest.raises(ConfigError, match="cannot be downloaded"):
        check_weights("resnet18")  # a model name means its default weights: the same file
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"")  # present is enough here: trials load (and check) the file itself
    check_weights(RESNET18)
    check_weights("resnet18")


def test_weight_files_and_names_are_checked(tmp_path):
    with pytest.raises(ConfigError, match=r"^train\.weights: got '.*missing\.pth'; file not found"):
        check_weights(str(tmp_path / "missing.pth"))
    (tmp_path / "mine.pth").write_bytes(b"")
    check_weights(str(tmp_path / "mine.pth"))
    with pytest.raises(ConfigError, match=r"must be a \.pth file or a torchvision weights name"):
        check_weights("ResNet18_Weights.NOPE")


def test_weight_sources_cover_grids_matches_overrides_and_skip_pretrained(tmp_path):
    runs = str(tmp_path / "runs")
    assert weight_sources(plan_sweep(SweepSettings(space="fold-ablation", runs_dir=runs))) == [RESNET18]
    images = tmp_path / "images"
    (images / "train" / "cat").mkdir(parents=True)
    transfer = plan_sweep(SweepSettings(space="imagenet-transfer", runs_dir=runs, sets=(f"data.root={images}",)))
    assert weight_sources(transfer) == ["ResNet50_Weights.IMAGENET1K_V2", "ResNet152_Weights.IMAGENET1K_V2"]
    assert weight_sources(plan_sweep(SweepSettings(space="fold-ablation-fmnist", runs_dir=runs))) == []
    assert weight_sources(plan_sweep(SweepSettings(space="quick", runs_dir=runs))) == []
    forced = plan_sweep(SweepSettings(space="fold-ablation", runs_dir=runs, sets=("train.weights=null",)))
    assert weight_sources(forced) == []


def test_resources_a_local_runtime_cannot_offer_are_refused():
    import torch

    cpus, gpus = local_cpus(), torch.cuda.device_count()
    check_local_resources(cpus, 0)
    with pytest.raises(ConfigError, match=rf"^--cpus-per-trial: got {cpus + 1}; exceeds this machine's {cpus} CPUs"):
        check_local_resources(cpus + 1, 0)
    with pytest.raises(ConfigError, match=rf"^--gpus-per-trial: got {gpus + 1}; exceeds the {gpus} GPU\(s\)"):
        check_local_resources(1, gpus + 1)
    if gpus:
        check_local_resources(1, 0.5)


def test_check_can_start_on_whole_plans(offline, tmp_path):
    runs = str(tmp_path / "runs")
    check_can_start(plan_sweep(SweepSettings(space="quick", runs_dir=runs)))  # digits, no weights: fine
    with pytest.raises(ConfigError, match=rf"^train\.weights: got '{RESNET18}'"):
        check_can_start(plan_sweep(SweepSettings(space="fold-ablation", runs_dir=runs)))
    # on a cluster the trials download on their own nodes: not the driver's business
    check_can_start(plan_sweep(SweepSettings(space="fold-ablation", runs_dir=runs, address="10.0.0.1:6379")))
    # an image folder is read by each trial; plan_sweep itself refuses one without train/<class>/
    empty = tmp_path / "no-images"
    empty.mkdir()
    with pytest.raises(ConfigError, match=r"imagefolder does not know its classes"):
        plan_sweep(SweepSettings(space="imagenet-transfer", runs_dir=runs, sets=(f"data.root={empty}",)))
