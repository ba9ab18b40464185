"""Fuzzed command lines: every sub-command answers with a result or one line on stderr, never a traceback.

``show``, ``spaces``, ``report`` and ``export`` run in full (in-process, through
``sweep.cli.main``) on random argv: real files, a real MLflow store (one sweep with finished,
failed and diverged trials, written through sweep.tracking.store), random options. ``sweep``, ``train`` and ``ui`` are
fuzzed only as deep as they go before starting Ray, a training or a server: argument parsing,
``SweepSettings`` and the sweep plan (space, objectives, ``--set``), the experiment config.

The contract (DESIGN §4, README): exit 0 with output, or a non-zero exit with exactly one line on
stderr (2 for user errors); "Traceback" never appears; an export that fails leaves no file.
"""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from sweep.cli import build_parser, main
from tests.test_faults_common import build_sweep_store

pytestmark = pytest.mark.faults
FUZZ = settings(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])
_STORE: dict[str, Any] = {}

# Printable text (a newline inside an argument is covered by its own test at the end).
printable = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=12)
junk = st.one_of(printable, st.sampled_from(["", "-", "--", "-1", "0", "1e9", "nan", "inf", "-h", "--help",
                                                        "val_acc", "val_acc:max", "params:min", "x=y", "=", "a,b"]))
numbers = st.one_of(st.integers(-5, 10).map(str), st.sampled_from(["0", "1", "2", "1e5", "-1", "nan", "inf", "x"]))
set_items = st.one_of(
    st.sampled_from(["model.fold=2", "fold=3", "model.start_id=5", "model.c_out=10", "train.lr=1e-3",
                     "train.epochs=0", "data.subset=10", "model.unit=nope", "model.num_nodes=[1,1,1]", "x=1", "=",
                     "model.fold", "model.base=-1", "train.lr=abc", "model.num_nodes=[", "data.name=cifar10"]),
    st.builds(lambda k, v: f"{k}={v}", st.sampled_from(["model.fold", "model.base", "train.lr", "model.unit",
                                                         "data.image_size", "model.num_nodes"]), junk))


def _note(label: str) -> None:
    """hypothesis.event, which only exists inside a @given test (plain tests share these helpers)."""
    if currently_in_test_context():
        event(label)


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as exc:  # argparse: --help (0) and usage errors (2)
            rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return rc, out.getvalue(), err.getvalue()


def check_contract(argv: list[str], rc: int, out: str, err: str) -> None:
    _note(f"{argv[0] if argv else '-'} exit {rc}")
    assert "Traceback" not in out + err, (argv, err[-2000:])
    if rc != 0:
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("resnetx: "), (argv, rc, err[-2000:])
        assert "internal error" not in lines[0], (argv, lines[0])  # user input must not reach a bug
        assert rc == 2, (argv, rc, lines[0])


def store() -> dict[str, Any]:
    """A store with one sweep (finished, failed and diverged trials), built once per session."""
    if not _STORE:
        import tempfile

        _STORE.update(build_sweep_store(Path(tempfile.mkdtemp(prefix="resnetx-fuzz-store-")) / "runs"))
    return _STORE


def _opt(name: str, values: st.SearchStrategy) -> st.SearchStrategy:
    return st.tuples(st.just(name), values).map(list)


def _argv(head: list[str], options: list[st.SearchStrategy], flags: list[str] = ()) -> st.SearchStrategy:
    """``head`` then a random subset of options (each [name, value]) and flags, shuffled."""
    pieces = st.lists(st.one_of(*options, *(st.just([f]) for f in flags), st.builds(lambda j: [j], junk)),
                      max_size=5)
    return pieces.map(lambda ps: head + [item for piece in ps for item in piece])


# -- show / spaces ------------------------------------------------------------------------
@settings(FUZZ, max_examples=50)
@given(config=st.one_of(st.sampled_from(["tiny", "resnet18", "resnet50-fold3", "seed-mbconv", "resnet9000", "nope",
                                         "model.yaml", "missing.yaml", "space.yaml", "junk.yaml"]), junk),
       rest=st.data())
def test_show(tmp_path_factory, config: str, rest: st.DataObject) -> None:
    folder = tmp_path_factory.mktemp("show")
    (folder / "model.yaml").write_text(yaml.safe_dump({"model": {"stem": "cifar", "unit": "basic", "fold": 2,
                                                                 "num_nodes": [2, 2, 2], "start_id": 2, "end_id": 6}}))
    (folder / "space.yaml").write_text("name: x\nmodel: {fold: {low: 1, high: 2}}\n")
    (folder / "junk.yaml").write_text(rest.draw(st.sampled_from(["[1, 2", "- a\n- b\n", "fold: [", "3", "{}", "?"])))
    target = str(folder / config) if config.endswith(".yaml") else config
    argv = rest.draw(_argv(["show", target], [_opt("--set", set_items), _opt("--input-size", st.one_of(
        st.sampled_from(["3,32,32", "1,16,16", "3,224", "0,0,0", "3,-1,8", "a,b,c", "3,10000,10000"]), junk))],
        flags=["--json"]))
    check_contract(argv, *run_cli(argv))


@settings(FUZZ, max_examples=40)
@given(rest=st.data())
def test_spaces(tmp_path_factory, rest: st.DataObject) -> None:
    folder = tmp_path_factory.mktemp("spaces")
    (folder / "mine.yaml").write_text(rest.draw(st.sampled_from([
        "name: mine\nmodel: {stem: cifar, fold: {low: 1, high: 2}, num_nodes: [2, 2, 2], start_id: fold, "
        "end_id: {low: start_id + 1, high: last_node}}\n", "model: {fold: {low: 3, high: 1}}\n", "nope: 1\n", "[",
        "model: {unit: {choice: []}}\n"])))
    name = rest.draw(st.one_of(st.sampled_from(["quick", "fold-ablation", "cifar10-pareto", "nope",
                                                str(folder / "mine.yaml"), str(folder / "missing.yaml"),
                                                str(folder / "mine.py")]), junk))
    argv = rest.draw(st.one_of(
        _argv(["spaces", "list"], [], flags=["--json"]),
        _argv(["spaces", "show", name], [_opt("--samples", numbers), _opt("--seed", numbers)], flags=["--json"]),
        st.lists(junk, max_size=3).map(lambda j: ["spaces", *j])))
    check_contract(argv, *run_cli(argv))


# -- report / export on a real store ------------------------------------------------------
def _store_options() -> list[st.SearchStrategy]:
    s = store()
    return [_opt("--runs-dir", st.sampled_from([str(s["dir"]), str(s["dir"]) + "-missing", "/", ""])),
            _opt("--experiment", st.sampled_from(["resnetx", "solo", "nope", ""])),
            _opt("--sweep", st.sampled_from([s["parent"], "0" * 32, "nope"])),
            _opt("--objectives", st.one_of(st.sampled_from(["val_acc:max,params:min", "params:min", "flops:min",
                                                             "val_acc:up", "nope:max", "val_acc:max,val_acc:max"]),
                                           junk)),
            _opt("--tracking-uri", st.sampled_from([s["uri"], "mlruns", "sqlite:///", "file:///tmp/nope"]))]


@settings(FUZZ, max_examples=25)
@given(rest=st.data())
def test_report(tmp_path_factory, rest: st.DataObject) -> None:
    out = tmp_path_factory.mktemp("report") / "out"
    argv = rest.draw(_argv(["report", "--out", str(out)], [
        *_store_options(), _opt("--budgets", st.one_of(st.sampled_from(["1e5,1e6", "0", "-1", "x", "1e5,,2e5"]),
                                                       junk))], flags=["--no-mlflow", "--no-mlflow"]))
    check_contract(argv, *run_cli(argv))


@settings(FUZZ, max_examples=40)
@given(rest=st.data())
def test_export_is_all_or_nothing(tmp_path_factory, rest: st.DataObject) -> None:
    out = tmp_path_factory.mktemp("export") / "out"
    by = st.one_of(st.sampled_from(["val_acc", "params:min", "latency_ms", "nope", "val_acc:sideways"]), junk)
    selection = rest.draw(st.one_of(  # mostly well-formed selections, so that exports also succeed
        st.just(["--front"]), st.tuples(numbers, by).map(lambda t: ["--top", t[0], "--by", t[1]]),
        numbers.map(lambda p: ["--max-params", p]),
        st.sampled_from([["--max-params", "1e9"], ["--front", "--max-params", "2e5"],
                         ["--top", "2", "--by", "val_acc"]]),
        st.just([])))
    head = ["export", "--out", str(out), "--runs-dir", str(store()["dir"]), *selection]
    argv = rest.draw(_argv(head, [*_store_options(), _opt("--top", numbers), _opt("--by", by)], flags=["--front"])
                     if rest.draw(st.integers(0, 2)) == 0 else st.just(head))
    rc, stdout, stderr = run_cli(argv)
    check_contract(argv, rc, stdout, stderr)
    files = sorted(out.rglob("*")) if out.exists() else []
    if rc != 0:
        assert files == [], (argv, files)  # nothing half-written
        return
    assert files and all(not f.name.startswith(".") for f in files), files  # no temp files left
    for path in files:
        text = path.read_text()
        assert "!!python" not in text
        document = yaml.safe_load(text)
        assert set(document) >= {"model", "provenance"}
    shutil.rmtree(out)


# -- sweep / train / ui: parsing and validation only --------------------------------------
def _parse_and_validate(argv: list[str]) -> tuple[int, str, str]:
    """What the command does before it starts Ray, a training or a server."""
    from resnetx.errors import ConfigError

    out, err = io.StringIO(), io.StringIO()
    rc = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            args = build_parser().parse_args(argv)
            if args.command == "sweep":
                from sweep.cli.sweep import settings_from_args
                from sweep.tune.runner import plan_sweep

                plan_sweep(settings_from_args(args))
            elif args.command == "train":
                from sweep.config.experiment import load_experiment

                load_experiment(args.config, args.sets)
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except ConfigError as exc:  # what main() prints
            err.write(f"resnetx: error: {exc}\n")
            rc = 2
    return rc, out.getvalue(), err.getvalue()


@settings(FUZZ, max_examples=80)
@given(rest=st.data())
def test_sweep_train_ui_arguments(tmp_path_factory, rest: st.DataObject) -> None:
    runs = str(tmp_path_factory.mktemp("runs"))
    sweep_opts = [_opt(name, values) for name, values in [
        ("--space", st.sampled_from(["quick", "fold-ablation", "nope", "/nope.yaml", "x.py"])),
        ("--search", st.sampled_from(["optuna", "random", "grid", "bayes"])),
        ("--objectives", st.one_of(st.sampled_from(["val_acc:max,params:min", "params", "x:y", ""]), junk)),
        ("--scheduler", st.sampled_from(["asha", "none", "hyperband"])), ("--num-samples", numbers),
        ("--max-concurrent", numbers), ("--cpus-per-trial", numbers), ("--gpus-per-trial", numbers),
        ("--time-budget", numbers), ("--trial-timeout", numbers), ("--max-failures", numbers), ("--seed", numbers),
        ("--experiment", st.sampled_from(["", " ", "x"])), ("--set", set_items),
        ("--tracking-uri", st.sampled_from(["mlruns", "sqlite:////tmp/x.db", "http://127.0.0.1:1"])),
        ("--trainable", st.sampled_from(["resnetx", "synthetic", "nope"]))]]
    argv = rest.draw(st.one_of(
        _argv(["sweep", "--runs-dir", runs], sweep_opts, flags=["--no-report"]),
        _argv(["train", rest.draw(st.sampled_from(["tiny", "nope", "/nope.yaml", "resnet18"]))],
              [_opt("--set", set_items), _opt("--runs-dir", st.just(runs)), _opt("--experiment", junk)],
              flags=["--no-mlflow"]),
        _argv(["ui"], [_opt("--port", numbers), _opt("--host", junk)]),
        st.lists(junk, max_size=4)))
    check_contract(argv, *_parse_and_validate(argv))


def test_an_argument_with_a_newline_still_gets_a_one_line_error() -> None:
    argv = ["report", "--bogus\nsecond line"]
    check_contract(argv, *run_cli(argv))
