"""``build_report``: read a sweep from MLflow, analyse it, write the report folder, tag the runs.

The one entry point that does I/O; the maths lives in ``pareto``/``hypervolume``/``analysis``,
the drawing in ``plots``, the text in ``render``. ``resnetx report`` and the end of
``resnetx sweep`` both call :func:`build_report`.

Files written to ``out_dir``: ``pareto.csv`` (every rankable trial with config, metrics,
``pareto_rank``, ``on_front``), ``failed.csv`` (every other trial), ``pareto.png``,
``hypervolume.png``, ``fold_ablation.png`` (when the sweep varies the fold), ``plots.html``
(interactive), ``report.md`` and ``index.html`` (self-contained).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from reports import schema
from reports.analysis import ON_FRONT, RANK, Analysis, analyse
from reports.mlflow_io import client as mlflow_client
from reports.mlflow_io import retry
from reports.pareto import UNRANKED, Objective, format_objectives
from reports.provenance import package_versions, utc_now
from reports.runs import KIND_SWEEP, SweepRuns, read_sweep_runs, resolve_objectives
from resnetx.errors import ConfigError


@dataclass
class ReportResult:
    """What a report produced: its files, the sweep it read and the analysis it rendered."""

    out_dir: Path
    files: dict[str, Path]  # pareto_csv, failed_csv, report_md, index_html, plots_html, *_png
    sweep: SweepRuns
    analysis: Analysis
    tagged_runs: int  # child runs whose pareto_rank / on_front tags were written
    logged_to: str | None  # parent run id the files were logged to under report/, if any

    @property
    def objectives(self) -> list[Objective]:
        return self.analysis.objectives

    @property
    def front(self) -> pd.DataFrame:
        return self.analysis.front

    @property
    def knee_run_id(self) -> str | None:
        return self.analysis.knee_run_id

    @property
    def hypervolume(self) -> float:
        return self.analysis.hypervolume

    @property
    def reference(self) -> list[float] | None:
        return self.analysis.reference


def recorded_reference(sweep: SweepRuns, objectives: Sequence[Objective]) -> tuple[list[float] | None, str]:
    """The sweep's fixed reference point (tag ``hv_reference``) if it is for these objectives."""
    import json

    text = sweep.parent.tags.get(schema.TAG_HV_REFERENCE) if sweep.parent else None
    if not text:
        return None, ""
    recorded = json.loads(text)
    if recorded.get("objectives") != format_objectives(objectives):
        return None, ""
    return [float(v) for v in recorded["values"]], str(recorded.get("source", "recorded with the sweep"))


def default_out_dir(tracking_uri: str, sweep: SweepRuns, reports_root: str | Path | None = None) -> Path:
    """``<reports root>/<sweep run id>`` (``train-<experiment>`` when reporting train runs).

    The reports root defaults to ``reports/`` beside a sqlite store's ``mlflow.db``; for a
    remote tracking URI the caller names it (``resnetx report`` passes ``<runs dir>/reports``).
    """
    if reports_root is None:
        if not tracking_uri.startswith("sqlite:///"):
            raise ConfigError("--out", None, "is required with a non-sqlite tracking URI")
        reports_root = Path(tracking_uri.removeprefix("sqlite:///")).parent / "reports"
    return Path(reports_root) / (sweep.sweep_run_id or f"train-{sweep.experiment}")


def write_text_atomic(path: Path, text: str) -> Path:
    """Write via a temp file in the same folder + ``os.replace``: readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def csv_frame(frame: pd.DataFrame, objectives: Sequence[Objective], first: Sequence[str] = ()) -> pd.DataFrame:
    """Stable, readable column order for the CSVs: ids and rank first, then objectives, metrics, config."""
    names = [o.name for o in objectives]
    lead = ["run_id", "run_name", "trial_id", schema.TAG_STATUS, *first, *names]
    cols = [c for c in dict.fromkeys([*lead, *frame.columns]) if c in frame.columns]
    return frame[cols]


def settings_of(sweep: SweepRuns, objectives: Sequence[Objective]) -> dict[str, Any]:
    tags = sweep.parent.tags if sweep.parent else {}
    out: dict[str, Any] = {"objectives (used)": format_objectives(objectives)}
    for tag in (schema.TAG_OBJECTIVES, schema.TAG_SPACE, schema.TAG_SEARCH, schema.TAG_SWEEP_SEED, schema.TAG_DATASET):
        if tag in tags:
            out[tag if tag != schema.TAG_OBJECTIVES else "objectives (sweep)"] = tags[tag]
    if sweep.parent:
        out.update({f"param {k}": v for k, v in sorted(sweep.parent.params.items())})
    out["trials"] = len(sweep.trials)
    return out


def provenance_of(sweep: SweepRuns) -> dict[str, Any]:
    out: dict[str, Any] = {"sweep run id": sweep.sweep_run_id or f"none ({sweep.kind} runs)",
                           "experiment": f"{sweep.experiment} (id {sweep.experiment_id})",
                           "tracking uri": schema.shown_uri(sweep.tracking_uri)}
    if sweep.parent:
        out["sweep run name"] = sweep.parent.run_name
        out["sweep status"] = sweep.parent.status
        out["sweep started"] = sweep.parent.start_time
        out["sweep ended"] = sweep.parent.end_time
    out["report generated"] = utc_now()
    out.update({f"version {k}": v for k, v in package_versions().items()})
    return out


def tag_runs(sweep: SweepRuns, analysis: Analysis) -> int:
    """Write ``pareto_rank``/``on_front`` on every child run (unranked runs: on_front=false, no rank)."""
    from mlflow.entities import RunTag

    client = mlflow_client(sweep.tracking_uri)
    wanted: dict[str, dict[str, str]] = {}
    for _, row in analysis.ranked.iterrows():
        rank = int(row[RANK])
        wanted[row["run_id"]] = ({RANK: str(rank), ON_FRONT: "true" if rank == 0 else "false"}
                                 if rank != UNRANKED else {ON_FRONT: "false"})
    for run_id in analysis.failed["run_id"]:
        wanted[run_id] = {ON_FRONT: "false"}
    written = 0
    for run_id, tags in wanted.items():
        current = sweep.report_tags.get(run_id, {})
        if RANK in current and RANK not in tags:
            retry(lambda r=run_id: client.delete_tag(r, RANK))
        if any(current.get(k) != v for k, v in tags.items()):
            batch = [RunTag(k, v) for k, v in tags.items()]
            retry(lambda r=run_id, b=batch: client.log_batch(r, tags=b))
            written += 1
    return written


def log_report(sweep: SweepRuns, out_dir: Path, subfolder: str = "") -> str | None:
    """Log the report folder under ``report/`` (or ``report/<subfolder>``) on the sweep's parent run."""
    if sweep.parent is None:
        return None
    client = mlflow_client(sweep.tracking_uri)
    where = f"{schema.REPORT_ARTIFACT_DIR}/{subfolder}" if subfolder else schema.REPORT_ARTIFACT_DIR
    retry(lambda: client.log_artifacts(sweep.parent.run_id, str(out_dir), where))
    return sweep.parent.run_id


def build_report(tracking_uri: str, experiment: str = schema.DEFAULT_EXPERIMENT, out_dir: str | Path | None = None,
                 objectives: str | Sequence[Objective] | None = None, sweep_run_id: str | None = None,
                 budgets: Sequence[float] | None = None, log_to_mlflow: bool = True,
                 reference: Sequence[float] | None = None, reports_root: str | Path | None = None,
                 at_epoch: int | str | None = None) -> ReportResult:
    """Write the Pareto report of one sweep (the latest in ``experiment`` unless ``sweep_run_id``).

    ``objectives``: ``"val_acc:max,params:min"`` or ``Objective`` list; default the sweep's
    ``objectives`` tag. ``budgets``: parameter budgets (default: quartiles and max of the
    trials' params). ``reference``: hypervolume reference point in the objectives' units
    (default rule in ``reports.pareto.default_reference``). ``out_dir`` default:
    ``<reports_root>/<sweep run id>``, reports_root defaulting to ``reports/`` beside a sqlite
    store's ``mlflow.db``. With ``log_to_mlflow`` the child runs get
    ``pareto_rank``/``on_front`` tags and the files go to the parent run under ``report/``.
    Without ``reference`` the sweep's recorded fixed reference (tag ``hv_reference``, from its
    space) is used when it is for the same objectives. ``at_epoch`` (an epoch, or ``"common"``:
    the last epoch every completed trial reached) ranks finished and stopped trials together by
    their metrics at that epoch. User errors raise a one-line ``ConfigError``.
    """
    sweep = read_sweep_runs(tracking_uri, experiment, sweep_run_id)
    chosen = resolve_objectives(objectives, sweep)
    source = ""
    if reference is None:
        reference, source = recorded_reference(sweep, chosen)
    trials, epoch = sweep.trials, None
    if at_epoch is not None:
        from reports.history import at_common_epoch

        trials, epoch = at_common_epoch(sweep, chosen, at_epoch)
    analysis = analyse(trials, chosen, sweep.param_columns, sweep.metric_columns, budgets, reference, source,
                       at_epoch=epoch)
    out = Path(out_dir) if out_dir is not None else default_out_dir(tracking_uri, sweep, reports_root)
    if epoch is not None and out_dir is None:  # beside the sweep's own report, never over it
        out = out / f"at-epoch-{epoch}"
    out.mkdir(parents=True, exist_ok=True)
    title = (f"ResNetX sweep {sweep.parent.run_name or sweep.sweep_run_id}" if sweep.kind == KIND_SWEEP and sweep.parent
             else f"ResNetX train runs of experiment {sweep.experiment}")

    files: dict[str, Path] = {}
    files["pareto_csv"] = write_text_atomic(out / "pareto.csv",
                                            csv_frame(analysis.ranked, chosen, (RANK, ON_FRONT)).to_csv(index=False))
    files["failed_csv"] = write_text_atomic(out / "failed.csv", csv_frame(analysis.failed, chosen).to_csv(index=False))
    files.update(_write_plots(analysis, out, title))
    settings, provenance = settings_of(sweep, chosen), provenance_of(sweep)
    from reports.render import render_html, render_markdown

    markdown = render_markdown(analysis, title, settings, provenance, files)
    confirmed = confirmed_section(sweep, chosen)
    if confirmed is not None:
        files["confirmed_csv"] = write_text_atomic(out / "confirmed.csv", confirmed[1])
        markdown = markdown.rstrip() + "\n\n" + confirmed[0]
    files["report_md"] = write_text_atomic(out / "report.md", markdown)
    links = [p.name for k, p in files.items() if not k.endswith("_png")] + ["report.md"]
    files["index_html"] = write_text_atomic(out / "index.html",
                                            render_html(analysis, title, settings, provenance, files, links))
    tagged, logged_to = 0, None
    if log_to_mlflow:
        # A ranking at one epoch is a view, not the sweep's front: the runs' on_front tags (what the
        # UI filters on) stay those of the full-length ranking.
        tagged = tag_runs(sweep, analysis) if epoch is None else 0
        logged_to = log_report(sweep, out, "" if epoch is None else f"at-epoch-{epoch}")
    return ReportResult(out_dir=out, files=files, sweep=sweep, analysis=analysis, tagged_runs=tagged,
                        logged_to=logged_to)


def confirmed_section(sweep: SweepRuns, objectives: Sequence[Objective]) -> tuple[str, str] | None:
    """(markdown, csv) of a confirm stage's confirmed front beside its search sweep's front; None
    for a search sweep."""
    from reports import confirm

    if sweep.parent is None or sweep.parent.tags.get(schema.TAG_STAGE) != schema.STAGE_CONFIRM:
        return None
    confirmed = confirm.summarise(sweep.trials, objectives)
    search_front, search = None, None
    search_id = sweep.parent.tags.get(schema.TAG_CONFIRM_OF)
    if search_id:
        from reports.frames import pareto_front

        search = read_sweep_runs(sweep.tracking_uri, sweep.experiment, search_id).trials
        search_front = pareto_front(search, list(objectives))
    table = confirmed.table.drop(columns=["run_ids"], errors="ignore")
    return confirm.render_markdown(confirmed, search_front, _final_recipe(sweep, search)), table.to_csv(index=False)


def _final_recipe(sweep: SweepRuns, search: pd.DataFrame | None) -> dict[str, Any]:
    """The data/train settings every confirm run shared and the search stage did not: the final
    recipe as it was applied, ``--set`` overrides included (every shared one without a search)."""
    frame = sweep.trials
    if not len(frame):
        return {}
    columns = [c for c in frame.columns if str(c).startswith(("data.", "train.")) and c != "train.seed"
               and frame[c].nunique(dropna=False) == 1]
    recipe = {c: frame[c].iloc[0] for c in columns}
    if search is None or not len(search):
        return recipe
    return {c: v for c, v in recipe.items()
            if c not in search.columns or search[c].nunique(dropna=False) != 1 or not _same(search[c].iloc[0], v)}


def _same(a: Any, b: Any) -> bool:
    return bool((pd.isna(a) and pd.isna(b)) or a == b) if not isinstance(a, (list, dict)) else a == b


def _write_plots(analysis: Analysis, out: Path, title: str) -> dict[str, Path]:
    from reports.plots import write_plots

    return write_plots(analysis, out, title)
