"""The data layer: dataset readers (``sources/``), loading into a :class:`DatasetBundle`, augmentation."""
