"""The space file format: what loads, and one-line errors (and CLI exit 2) for what does not."""

from __future__ import annotations

import random
import textwrap

import pytest

from resnetx.errors import ConfigError
from search_spaces import load_space, parse_space_text
from search_spaces.schema import DATA_FIELDS, TRAIN_FIELDS
from sweep.cli import main

SMALL = """
name: small
model:
  stem: cifar
  in_channels: 1
  num_classes: 10
  base: 8
  stem_width: 8
  unit: basic
  bottle_scale: 1.0
  num_nodes: [2, 2]
  fold: {low: 1, high: 2}
  start_id: {low: fold, high: last_node - 1}
  end_id: {low: start_id + 1, high: last_node}
data: {name: digits, image_size: 16}
train: {epochs: 1, lr: {low: 0.01, high: 0.1, log: true}}
"""


def write(tmp_path, text: str, name: str = "space.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_space_text(textwrap.dedent(text), "test.yaml")
    message = str(info.value)
    assert "\n" not in message
    return message


def test_a_user_file_loads_and_samples(tmp_path):
    space = load_space(str(write(tmp_path, SMALL, "mine.yaml")))
    assert space.name == "small"
    cfg = space.sample(random.Random(0))
    assert set(cfg["model"]) >= {"fold", "start_id", "end_id"}
    assert 0.01 <= cfg["train"]["lr"] <= 0.1
    assert space.input_size == (1, 16, 16)
    assert space.count_distinct() == 4  # see test_spaces_counting for the hand count


def test_name_defaults_to_the_file_stem(tmp_path):
    text = SMALL.replace("name: small\n", "")
    assert load_space(str(write(tmp_path, text, "my-space.yaml"))).name == "my-space"


@pytest.mark.parametrize(("text", "expected"), [
    # low > high, located at the field's key
    (SMALL.replace("fold: {low: 1, high: 2}", "fold: {low: 2, high: 1}"),
     "model.fold.high: got 1; must be >= low (2)"),
    # unknown keys: top level, a section, a parameter
    (SMALL + "searcher: tpe\n", "searcher: got 'tpe'; unknown key"),
    (SMALL.replace("unit: basic", "units: basic"), "model.units: got 'basic'; unknown key; known: num_nodes"),
    (SMALL.replace("fold: {low: 1, high: 2}", "fold: {low: 1, high: 2, lgo: true}"),
     "model.fold.lgo: got True; unknown key"),
    (SMALL.replace("epochs: 1", "epochz: 1"), "train.epochz: got 1; unknown key; known: epochs"),
    # kinds
    (SMALL.replace("unit: basic", "unit: {choose: [basic]}"), "model.unit: got {'choose': ['basic']}; names no"),
    (SMALL.replace("unit: basic", "unit: {choice: [basic], grid: [basic]}"), "model.unit: got"),
    (SMALL.replace("unit: basic", "unit: {choice: []}"), "model.unit.choice: got []; must list at least one"),
    (SMALL.replace("unit: basic", "unit: {choice: [basic, basic]}"),
     "model.unit.choice.1: got 'basic'; is listed twice"),
    (SMALL.replace("fold: {low: 1, high: 2}", "fold: {low: 1, high: 2.5, type: int}"),
     "model.fold.high: got 2.5; must be an integer"),
    (SMALL.replace("fold: {low: 1, high: 2}", "fold: {low: 1, high: 2.5}"), "model.fold: got 2."),  # a float range
    (SMALL.replace("log: true", "log: true, step: 0.01"), "train.lr.step: got 0.01; cannot be combined with log"),
    (SMALL.replace("low: 0.01, high: 0.1, log: true", "low: 0.0, high: 0.1, log: true"),
     "train.lr.low: got 0.0; must be > 0 with log: true"),
    # dependent bounds
    (SMALL.replace("high: last_node - 1", "high: last_nod - 1"),
     "model.start_id: got 'model.last_nod'; refers to an unknown field"),
    (SMALL.replace("high: last_node - 1", "high: last_node ** 2"),
     "model.start_id.high: got 'last_node ** 2'; must be"),
    (SMALL.replace("low: start_id + 1", "low: end_id"), "model.end_id: got 'model.end_id'; refers to itself"),
    (SMALL.replace("low: fold, high", "low: end_id - 1, high"),
     "model.start_id: got ['model.end_id']; depends on itself through these fields"),
    # ranges that are empty for some points are found at load time
    (SMALL.replace("high: last_node - 1", "high: 1"), "model.start_id: got [2, 1]; the range is empty here "
                                                     "(low 2 > high 1; model.fold=2)"),
    # contradictory constants are found at load time
    (SMALL.replace("end_id: {low: start_id + 1, high: last_node}", "end_id: 9"),
     "model.end_id: got 9; must be <= the last node (4)"),
    # depth splits no fold can fill
    (SMALL.replace("num_nodes: [2, 2]", "num_nodes: {split: 5, stages: 3}").replace("high: 2}", "high: 3}"),
     "model.num_nodes.split: got 5; must be >= 12 (with fold up to 3, each of 3 stages needs >= 4 units)"),
    (SMALL.replace("unit: basic", "unit: {split: 4, stages: 2}"), "model.unit: got"),
    # matches that miss a value
    (SMALL.replace("bottle_scale: 1.0", "bottle_scale: {match: unit, cases: [{when: mbconv, value: 0.5}]}"),
     "model.bottle_scale: got 'basic'; no case matches model.unit=\"basic\" and there is no default"),
    (SMALL.replace("bottle_scale: 1.0", "bottle_scale: {match: unit, cases: [{when: basic, valeu: 1}]}"),
     "model.bottle_scale.cases.0.value: got None; required field is missing"),
    # metadata
    (SMALL + "objectives: [val_acc]\n", "objectives.0: got 'val_acc'; must look like metric:max or metric:min"),
    (SMALL + "budget: {max_params: 0}\n", "budget.max_params: got 0; must be greater than 0"),
    (SMALL + "replicates: 2\n", None),
    (SMALL.replace("epochs: 1", "epochs: 1, seed: 3") + "replicates: 2\n", "replicates: got 2; cannot be combined"),
])
def test_malformed_spaces_give_one_line_errors(text, expected):
    if expected is None:
        parse_space_text(textwrap.dedent(text), "test.yaml")
        return
    assert error_of(text).startswith(expected)


def test_bad_yaml_and_non_mappings():
    assert error_of("model: {fold: [1, 2}\n").startswith("space: got 'test.yaml'; is not valid YAML at line 1")
    assert error_of("- just\n- a list\n").startswith("space: got 'test.yaml'; must contain a mapping")


def test_files_that_are_not_spaces(tmp_path):
    code = write(tmp_path, "import os\nos.system('echo pwned')\n", "evil.py")
    with pytest.raises(ConfigError, match=r"^space: got '.*evil.py'; must be a .yaml, .yml or .json file"):
        load_space(str(code))
    with pytest.raises(ConfigError, match=r"^space: got '.*missing.yaml'; file not found$"):
        load_space(str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match=r"^space: got 'quik'; unknown built-in space; known: cifar10-pareto"):
        load_space("quik")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ConfigError, match=r"^space: got '.*binary.yaml'; "):
        load_space(str(binary))


def test_infeasible_budget_is_a_clear_error():
    space = parse_space_text(SMALL + "budget: {max_params: 100}\n", "tiny-budget.yaml")
    with pytest.raises(ConfigError, match=r"^space: got 'small'; no valid sample within budget in 50 draws "
                                          r"\(last: params [\d,]+ > max_params 100\)"):
        space.sample(random.Random(0), max_tries=50)


def test_known_keys_follow_the_experiment_config():
    """search_spaces may not import sweep, so it keeps its own lists; they must not drift."""
    from sweep.config.experiment import DataConfig, TrainConfig

    assert set(DATA_FIELDS) == set(DataConfig.model_fields)
    assert set(TRAIN_FIELDS) == set(TrainConfig.model_fields)


def test_samples_pass_the_experiment_config():
    from sweep.config.experiment import ExperimentConfig

    for name in ("quick", "cifar10-pareto", "fold-ablation"):
        space = load_space(name)
        rng = random.Random(1)
        for _ in range(5):
            ExperimentConfig(**space.sample(rng))


# -- the command line -----------------------------------------------------------------------
def test_cli_list_and_show(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["spaces", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("quick", "fold-ablation", "cifar10-pareto", "imagenet-transfer"):
        assert name in out
    assert "33,744" in out
    assert main(["spaces", "show", "quick", "--samples", "3"]) == 0
    out = capsys.readouterr().out
    assert "model.start_id" in out and "fold, last_node - 1" in out
    assert "3 samples (seed 0)" in out and "params" in out


def test_cli_show_json(capsys, tmp_path):
    import json

    assert main(["spaces", "show", str(write(tmp_path, SMALL)), "--json", "--samples", "2"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["name"] == "small" and info["distinct_networks"] == 4 and len(info["samples"]) == 2
    assert info["samples"][0]["params"] > 0
    assert main(["spaces", "show", "fold-ablation", "--json", "--samples", "0"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["grid_points"], info["distinct_networks"], info["distinct_trials"]) == (24, 4, 24)


@pytest.mark.parametrize(("content", "name"), [
    (SMALL.replace("fold: {low: 1, high: 2}", "fold: {low: 2, high: 1}"), "space.yaml"),
    ("model: [1, 2\n", "space.yaml"),
    (SMALL + "extra: 1\n", "space.yaml"),
    ("print('hi')\n", "space.py"),
])
def test_cli_exits_2_with_one_line(capsys, tmp_path, content, name):
    path = write(tmp_path, content, name)
    assert main(["spaces", "show", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("resnetx: error: ")


def test_cli_unknown_space_and_action(capsys):
    assert main(["spaces", "show", "nope"]) == 2
    assert capsys.readouterr().err.startswith("resnetx: error: space: got 'nope'; unknown built-in space")
    with pytest.raises(SystemExit) as info:
        main(["spaces", "frobnicate"])
    assert info.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_the_documented_example_loads():
    """docs/search_spaces.md's complete example is a working space."""
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "search_spaces.md").read_text()
    example = doc.split("## A complete example", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    space = parse_space_text(example, "docs example")
    cfg = space.sample(random.Random(0))
    assert space.name == "my-space" and space.budget_violation(cfg) is None
    assert cfg["model"]["stem_width"] == cfg["model"]["base"]
