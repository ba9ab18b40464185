"""The ``resnetx`` command line: one console script, one module per sub-command.

Sub-command modules import heavy libraries (torch, Ray, MLflow) inside ``run`` so that
``resnetx --help`` and argument errors answer instantly. Every error a user can cause ends as
one line on stderr and exit code 2; anything unexpected is one line and exit code 1 (set
``RESNETX_DEBUG=1`` for the traceback).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from resnetx.errors import ConfigError
from sweep.config.paths import configure_environment

# Explicit registry: command name -> module with ``add_arguments(parser)`` and ``run(args)``.
COMMANDS: dict[str, str] = {
    "show": "sweep.cli.show",
    "spaces": "sweep.cli.spaces",
    "train": "sweep.cli.train",
    "sweep": "sweep.cli.sweep",
    "confirm": "sweep.cli.confirm",
    "report": "sweep.cli.report",
    "export": "sweep.cli.export",
    "record": "sweep.cli.record",
    "ui": "sweep.cli.ui",
}


class OneLineParser(argparse.ArgumentParser):
    """argparse prints usage plus a message on errors; we print one line and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        message = " ".join(message.split())  # an argument holding a newline must not break the one line
        sys.stderr.write(f"resnetx: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="resnetx", description="Sweeps over folded ResNets (ResNetX).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True
    for name, module_path in COMMANDS.items():
        module = importlib.import_module(module_path)
        doc = (module.__doc__ or "").strip().splitlines()[0]
        command = sub.add_parser(name, help=doc, description=module.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if not sys.stdout.isatty():  # logs and pipes: wide tables instead of rich's 80-column default
        os.environ.setdefault("COLUMNS", "160")
    configure_environment()
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except ConfigError as exc:
        sys.stderr.write(f"resnetx: error: {' '.join(str(exc).splitlines())}\n")
        return 2
    except OSError as exc:  # a full disk, a missing permission: the system's own words, one line
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        sys.stderr.write(f"resnetx: error: {exc.strerror or exc}{where}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("resnetx: interrupted\n")
        return 130
    except Exception as exc:  # one line for users; RESNETX_DEBUG=1 shows the traceback
        if os.environ.get("RESNETX_DEBUG"):
            raise
        text = " ".join(str(exc).split())[:500]
        sys.stderr.write(f"resnetx: internal error: {type(exc).__name__}: {text} "
                         "(set RESNETX_DEBUG=1 for the traceback)\n")
        return 1

