"""The Ray Tune layer: runner, trainable, searcher, schedulers, callbacks, progress, cluster set-up."""
