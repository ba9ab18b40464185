"""Write a recorded benchmark: every finished trial of a space, every epoch, into one versioned CSV.

The record is what `resnetx sweep --trainable replay --record FILE` replays and what
bench/search_strategies.py compares search strategies on (docs/benchmarks.md). Train the space
first, every network to the end, then a second seed of some of them for the noise level:

  resnetx sweep --space fmnist-bench --search grid --num-samples 224 --objectives val_acc:max,params:min,latency_ms:min
  resnetx sweep --space fmnist-bench --search random --seed 1 --num-samples 32 --objectives ...
  resnetx record --space fmnist-bench --out bench/records/fmnist-bench.csv

Every finished trial run of the space in --experiment is read (or only those of the --sweep run
ids given); a network trained with several seeds keeps each as a replicate, the earliest first.
The file starts with its provenance (space name and definition hash, code version, machine,
torch version, date, the sweeps it came from) on `#` lines.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from sweep.cli.report import add_store_location

    add_store_location(parser)
    parser.add_argument("--space", required=True, metavar="NAME|FILE", help="the space whose trials to record")
    parser.add_argument("--sweep", action="append", default=[], metavar="RUN_ID",
                        help="only the trials of this sweep (repeatable; default: every sweep of the space)")
    parser.add_argument("--out", required=True, metavar="FILE", help="the record to write (CSV)")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from search_spaces import load_space
    from sweep.cli.report import tracking_uri_of
    from sweep.tracking.record import check_writable, record_from_runs, write_record

    check_writable(args.out)
    space = load_space(args.space)
    uri = tracking_uri_of(args)
    record, counts = record_from_runs(uri, args.experiment, space, args.sweep)
    path = write_record(record, args.out)
    console = Console(highlight=False)
    spread = record.replicate_spread()
    noise = (f"; {len(spread)} networks with a second seed: final val_acc differs by "
             f"{spread['difference'].abs().mean():.4f} on average (sd of the difference "
             f"{spread['difference'].std(ddof=1):.4f})" if len(spread) > 1 else "")
    console.print(f"wrote {path}: {counts['networks']} networks of space {space.name}, {record.epochs} epochs each, "
                  f"{record.total_compute():,.0f} s of recorded training{noise}", soft_wrap=True, markup=False)
    left = {k: v for k, v in counts.items() if k in ("incomplete", "same_seed_again") and v}
    if left:
        console.print("left out: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in left.items()), markup=False)
    return 0
