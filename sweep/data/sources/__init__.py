"""Raw dataset readers, one module per source. ``sweep.data.load`` is the public entry point.

Each reader returns :class:`sweep.data.sources.base.RawSplits` (uint8 NCHW arrays, int64 labels)
and imports torch/torchvision/scikit-learn only when called, so the registry in
``sweep.data.load`` stays cheap to import.
"""
