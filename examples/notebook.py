# %% [markdown]
# # ResNetX sweeps from Python
#
# Run a small sweep, read it back as a DataFrame, filter it with pandas, plot the front and
# export the knee. The same code as docs/api.md, in cells (`# %%`): open it in Jupyter (with
# jupytext) or VS Code and run it cell by cell, or run it whole: `python examples/notebook.py`.
# tests/test_api.py runs this file (smaller, through the NOTEBOOK_* variables), so it cannot rot.

# %%
import os
from pathlib import Path

from reports import hypervolume, knee, load_sweep, pareto_front, plot_front, reference_point
from reports.export import Selection, export_configs
from sweep import experiment_config, run_sweep

RUNS = Path(os.environ.get("NOTEBOOK_RUNS_DIR", "notebook-runs"))  # mlflow.db, ray/, reports/, data/
TRIALS = int(os.environ.get("NOTEBOOK_TRIALS", "8"))  # 8 trials of 3 epochs: about 2 minutes on 2 cores
EPOCHS = int(os.environ.get("NOTEBOOK_EPOCHS", "3"))
SUBSET = int(os.environ.get("NOTEBOOK_SUBSET", "1000"))  # training images (digits has 1,797 in all)

# %% [markdown]
# ## 1. Run a small sweep
# The settings of `resnetx sweep`, by their names (`num_samples` is `--num-samples`);
# `overrides` is `--set`. Progress lines appear below the cell; the report is written at the end.

# %%
result = run_sweep(space="quick", search="random", num_samples=TRIALS, max_concurrent=2, runs_dir=RUNS,
                   overrides={"train.epochs": EPOCHS, "data.subset": SUBSET})
print(result.statuses, result.parent_run_id)
print("report:", result.report_files["index_html"])

# %% [markdown]
# ## 2. Load it as a DataFrame
# One row per trial: status, epochs trained, Pareto rank, final metrics and the flattened
# config (`model.*`, `data.*`, `train.*`). In a later session: `load_sweep(RUNS)` (the latest
# sweep with trials) or `load_sweep(RUNS, sweep=RUN_ID)`.

# %%
df = result.trials()
assert len(df) == len(load_sweep(RUNS, sweep=result.parent_run_id))
print(df[["trial_id", "status", "epochs", "pareto_rank", "val_acc", "params", "model.unit", "model.fold"]])

# %% [markdown]
# ## 3. Filter with pandas, rank the subset
# `pareto_front` and `hypervolume` take any DataFrame with the objective columns: here the
# folded networks alone. Only finished (or early-stopped) trials are ranked. One reference
# point for both hypervolumes (the whole sweep's default one), so both measure the same box.

# %%
folded = df[df["model.fold"] > 1]
print(pareto_front(folded)[["trial_id", "val_acc", "params", "model.fold"]])
reference = reference_point(df)  # [val_acc, params]: the worst values, pushed 10 % of their range further
print(f"hypervolume: all {hypervolume(df, reference=reference):.1f}, "
      f"folded {hypervolume(folded, reference=reference):.1f}")

# %% [markdown]
# ## 4. Plot the front
# The report's own figure (`pareto.png`) as a matplotlib Figure. In Jupyter a cell whose last
# line is `fig` shows it; here it is saved (byte for byte the report's pareto.png).

# %%
fig = plot_front(df)
fig.savefig(RUNS / "front.png")

# %% [markdown]
# ## 5. Export the knee
# The knee is the front's best trade-off (the report's red star). `Selection(max_params=P)` alone
# exports the most accurate trial with at most P parameters: with P the knee's own parameter
# count, that is the knee (or a trial tying with it on accuracy and size). `resnetx train FILE`
# retrains the exported YAML; `resnetx show FILE` prints its network.

# %%
best = knee(df)
print(f"knee: trial {best['trial_id']}, val_acc {best['val_acc']:.4f}, {int(best['params']):,} params")
exported = export_configs(result.tracking_uri, result.experiment, RUNS / "export", Selection(max_params=best["params"]),
                          sweep_run_id=result.parent_run_id, validate=experiment_config)
print("exported:", exported[0].path)
