"""``resnetx show``: plan, parameters and FLOPs; bad input is one line on stderr and exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from resnetx import builtin_config, get_pred
from sweep.cli import main

RESNETX = Path(sys.executable).with_name("resnetx")


def show(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["show", *args])
    out, err = capsys.readouterr()
    return code, out, err


def show_json(capsys, *args: str) -> dict:
    code, out, err = show(capsys, *args, "--json")
    assert code == 0 and err == ""
    return json.loads(out)


def test_show_builtin_prints_plan_params_and_flops(capsys):
    code, out, err = show(capsys, "resnet50")
    assert code == 0 and err == ""
    assert "parameters: 25,557,032" in out
    assert "FLOPs (forward, 2 per multiply-add) at 3x224x224" in out
    assert "projections=4" in out and "fold=1" in out
    assert f"config hash: {builtin_config('resnet50').canonical_hash()}" in out


def test_show_folded_builtin(capsys):
    data = show_json(capsys, "resnet50-fold3")
    assert data["config"]["fold"] == 3 and data["params"] == resnet50_fold3_params_from_torchvision()
    assert [row["pred"] for row in data["plan"]] == [get_pred(i, 3, 3, 16) for i in range(1, 17)]
    assert sum(row["shortcut"] != "identity" for row in data["plan"]) == 10


def test_show_json_output(capsys):
    data = show_json(capsys, "resnet18", "--input-size", "3,32,32")
    assert set(data) == {"config", "config_hash", "params", "flops", "input_size", "plan"}
    assert (data["params"], data["flops"], data["input_size"]) == (11_689_512, 75_046_912, [3, 32, 32])
    assert data["plan"][2] == {"node": 3, "stage": 2, "pred": 2, "skip": 1, "in": 64, "hidden": 128, "out": 128,
                               "stride": 2, "shortcut": "projection 64->128 /2"}


def test_show_sets_override_the_builtin(capsys):
    data = show_json(capsys, "resnet50", "--set", "model.fold=3", "--set", "model.start_id=5")
    cfg = data["config"]
    assert (cfg["fold"], cfg["start_id"], cfg["unit"]) == (3, 5, "bottleneck")
    assert [row["pred"] for row in data["plan"]] == [get_pred(i, 3, 5, 16) for i in range(1, 17)]
    # the seed's alias names override the field, not add a second one
    assert show_json(capsys, "resnet18", "--set", "model.c_out=10")["config"]["num_classes"] == 10


def test_show_yaml_file_and_exported_model_section(capsys, tmp_path: Path):
    cfg = builtin_config("cifar-resnet20").replace(fold=2, start_id=3)
    plain = tmp_path / "net.yaml"
    plain.write_text(cfg.to_yaml())
    exported = tmp_path / "best.yml"
    exported.write_text(yaml.safe_dump({"model": cfg.to_dict(), "train": {"lr": 0.1}}))
    for path in (plain, exported):
        data = show_json(capsys, str(path))
        assert data["config"] == cfg.to_dict()
        assert data["config_hash"] == cfg.canonical_hash()
        assert data["input_size"] == [3, 32, 32]  # cifar stem default
    # file < --set
    assert show_json(capsys, str(plain), "--set", "fold=3")["config"]["fold"] == 3


BAD = [
    (["resnet50", "--set", "model.fold=0"], "model.fold: got 0"),
    (["resnet50", "--set", "model.fold=3", "--set", "model.start_id=2"], "model.start_id: got 2"),
    (["resnet50", "--set", "model.end_id=17"], "model.end_id: got 17"),
    (["resnet50", "--set", "model.unit=resnext"], "model.unit: got 'resnext'"),
    (["resnet50", "--set", "model.base=-64"], "model.base: got -64"),
    (["resnet50", "--set", "model.num_nodes=[3,2.5,6,3]"], "model.num_nodes.1: got 2.5"),
    (["resnet50", "--set", "model.num_nodes=[3,'4',6,3]"], "model.num_nodes.1: got '4'"),
    (["resnet50", "--set", "model.num_nodes=[true,4,6,3]"], "model.num_nodes.0: got True"),
    (["resnet50", "--set", "model.widht=3"], "model.widht: got 3; unknown key"),
    (["resnet50", "--set", "fold"], "--set: got 'fold'"),
    (["resnet50-fold0"], "model.fold: got 0"),
    (["resnet51"], "unknown built-in"),
    (["missing.yaml"], "file not found"),
    (["resnet50", "--input-size", "3,x,224"], "--input-size"),
]


@pytest.mark.parametrize(("args", "message"), BAD)
def test_bad_input_is_one_line_and_exit_code_2(capsys, args, message):
    code, out, err = show(capsys, *args)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("resnetx: error: "), err
    assert message in err


def test_bad_yaml_and_unknown_keys_in_a_file(capsys, tmp_path: Path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("fold: [1, 2\nunit: basic\n")
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("fold: 2\nGRAPH: {FOLD: 2}\n")
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    for path, message in [(broken, "not valid YAML"), (unknown, "model.GRAPH: got"), (listing, "mapping")]:
        code, out, err = show(capsys, str(path))
        assert (code, out) == (2, ""), err
        assert err.count("\n") == 1 and message in err, err


def test_console_script_in_a_real_process(tmp_path: Path):
    assert RESNETX.exists(), RESNETX
    proc = subprocess.run([str(RESNETX), "show", "resnet18", "--set", "model.fold=0"], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == "resnetx: error: model.fold: got 0; must be >= 1\n"


def test_show_of_an_experiment_file_counts_the_network_that_trains(capsys):
    """in_channels/num_classes left to the dataset are filled from it, and FLOPs use its image size."""
    from resnetx import count_params
    from sweep.config.experiment import load_experiment

    path = str(Path(__file__).resolve().parents[1] / "examples" / "digits-tiny.yaml")
    assert main(["show", path, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    trained = load_experiment(path).model
    assert shown["params"] == count_params(trained) and shown["input_size"] == [1, 16, 16]
    assert shown["config"]["in_channels"] == 1 and shown["config"]["num_classes"] == 10


def resnet50_fold3_params_from_torchvision() -> int:
    """torchvision's ResNet-50, minus its 4 downsample projections, plus a 1x1 conv + BN projection
    for every node whose folded shortcut source (the seed's get_pred, fold 3 over nodes 3..16)
    differs in channels or resolution: 30,978,088, from torchvision's count and shapes alone."""
    import torchvision

    tv = torchvision.models.resnet50()
    total = sum(p.numel() for p in tv.parameters())
    total -= sum(p.numel() for name, p in tv.named_parameters() if ".downsample." in name)
    stage_of = [0] + [i for i, n in enumerate((3, 4, 6, 3)) for _ in range(n)]  # stem at stage 0's resolution
    channels = [64] + [256 * 2 ** stage_of[node] for node in range(1, 17)]
    for node in range(1, 17):
        source = get_pred(node, 3, 3, 16)
        if channels[source] != channels[node] or stage_of[source] != stage_of[node]:
            total += channels[source] * channels[node] + 2 * channels[node]
    return total


def test_show_reads_an_experiment_file_exactly_as_training_does(capsys, tmp_path: Path):
    """One reader (load_experiment) for both: the same network, the same --set, the same refusals."""
    from resnetx.errors import ConfigError
    from sweep.config.experiment import load_experiment

    path = str(Path(__file__).resolve().parents[1] / "examples" / "digits-tiny.yaml")
    sets = ["fold=2", "model.start_id=2", "model.c_out=10"]
    assert main(["show", path, "--json", *(a for s in sets for a in ("--set", s))]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["config"] == load_experiment(path, ["fold=2", "model.start_id=2"]).model.to_dict()
    # a model that contradicts its dataset: training refuses it, so show does too, in the same words
    clash = tmp_path / "clash.yaml"
    clash.write_text(yaml.safe_dump({"model": {"num_nodes": [1, 1], "in_channels": 3}, "data": {"name": "digits"}}))
    with pytest.raises(ConfigError) as refused:
        load_experiment(str(clash))
    code, out, err = show(capsys, str(clash))
    assert (code, out) == (2, "") and err == f"resnetx: error: {refused.value}\n"
    assert "dataset digits has 1" in err
