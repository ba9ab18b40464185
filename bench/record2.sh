#!/bin/sh
# Train fmnist-bench-2 for its record, resumably (make bench-record-2; hours on 2 cores).
# Three sweeps in one experiment: every network at seed 0, then the first 48 networks of one fixed
# shuffled grid order at seeds 1 and 2 (the noise level). A step that was started and not finished
# (the session ended, the machine rebooted) continues with `resnetx sweep --resume`; a finished step
# is skipped. Then `resnetx record` writes bench/records/fmnist-bench-2.csv.
#   RESNETX=.venv/bin/resnetx RUNS=runs/bench-record-2 sh bench/record2.sh
set -eu
RESNETX=${RESNETX:-.venv/bin/resnetx}
RUNS=${RUNS:-runs/bench-record-2}
COMMON="--space fmnist-bench-2 --objectives val_acc:max,params:min,latency_ms:min --runs-dir $RUNS --experiment fmnist-bench-2 --no-report"
mkdir -p "$RUNS/steps"

step() {  # step NAME OPTIONS...
  name=$1; shift
  if [ -f "$RUNS/steps/$name.done" ]; then echo "record2: $name done"; return; fi
  if [ -f "$RUNS/steps/$name.started" ]; then
    echo "record2: $name resumes"
    # shellcheck disable=SC2086
    $RESNETX sweep --resume --runs-dir "$RUNS" --experiment fmnist-bench-2 --no-report
  else
    date -u +%FT%TZ > "$RUNS/steps/$name.started"
    # shellcheck disable=SC2086
    $RESNETX sweep $COMMON --name "$name" "$@"
  fi
  date -u +%FT%TZ > "$RUNS/steps/$name.done"
}

step grid-seed0 --search grid --num-samples 352
step shuffled-seed1 --search grid --grid-order shuffled --seed 1 --num-samples 48
step shuffled-seed2 --search grid --grid-order shuffled --seed 2 --num-samples 48
$RESNETX record --space fmnist-bench-2 --runs-dir "$RUNS" --experiment fmnist-bench-2 --out bench/records/fmnist-bench-2.csv
