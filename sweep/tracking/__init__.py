"""The tracking layer: the MLflow store and batched, retried run logging (``store.py``)."""
