"""The ``resnetx`` command line (top layer): one module per sub-command, ``main`` in ``main.py``."""

from sweep.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
