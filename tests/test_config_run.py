"""One rule opens the MLflow run of a trained config, for ``resnetx train`` and a sweep trial alike.

The two opened runs by two copies of the same code (sweep/api.py and sweep/tune/callbacks.py at
7bd5730); a tag added to one would have been missing from the other. Checked here on a real
sqlite store: the tags a report filters on, the params, and a config.yaml that rebuilds the config.
"""

from __future__ import annotations

import yaml
from mlflow.tracking import MlflowClient

from reports import schema
from sweep.config.experiment import ExperimentConfig
from sweep.tracking.store import open_config_run, prepare_store


def test_a_config_run_carries_its_tags_params_and_a_config_that_rebuilds_it(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = ExperimentConfig(model={"fold": 2, "num_nodes": [3, 3]}, data={"name": "digits"}, train={"epochs": 2})
    logger = open_config_run(uri, prepare_store(uri, "one-rule"), cfg, name="trial-x", role=schema.ROLE_TRIAL,
                             tags={schema.TAG_TRIAL_ID: "x"}, config_hash="key-1")
    logger.end()
    run = MlflowClient(uri).get_run(logger.run_id)
    tags = run.data.tags
    assert tags[schema.TAG_ROLE] == schema.ROLE_TRIAL and tags[schema.TAG_TRIAL_ID] == "x"
    assert tags[schema.TAG_CONFIG_HASH] == "key-1" and tags[schema.TAG_DATASET] == "digits"
    assert tags[schema.TAG_MODEL_HASH] == cfg.model.canonical_hash()
    assert run.data.params["model.fold"] == "2" and run.data.params["train.epochs"] == "2"
    path = MlflowClient(uri).download_artifacts(logger.run_id, schema.CONFIG_ARTIFACT, str(tmp_path))
    with open(path) as handle:
        assert ExperimentConfig(**yaml.safe_load(handle)).config_hash() == cfg.config_hash()
