"""The config layer (bottom of ``sweep``): experiment, data and train configs, sweep settings,
``--set`` overrides, dataset metadata and the runs-folder paths. Imports no torch, Ray or MLflow."""
