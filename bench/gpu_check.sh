#!/usr/bin/env bash
# GPU check (issue 10): on a CUDA machine, run the CUDA tests and the GPU benchmarks in under
# 8 minutes and write every figure to one file.
#
#   bench/gpu_check.sh [OUTPUT]     # OUTPUT: a file, or a folder; default $OUT, else .
#                                   # (a folder gets gpu-check-<date>.txt)
#
# Steps, each under its own time limit, all under a total budget of CHECK_BUDGET_S (465 s):
#   1. pytest -m cuda tests/test_cuda.py (bf16/fp16 autocast, GradScaler and exact resume with
#      its state, channels_last, torch.compile, data resident on / streamed to the GPU)
#   2. bench/train_throughput.py on the GPU: resident data, resident + channels_last, streamed
#      data (data.loader=stream), each against torchvision DataLoader loops (workers 0 and 4)
#   3. bench/model_overhead.py (ResNetX vs torchvision and fold K vs fold 1; it has no device
#      option, so these ratios are measured on this machine's CPU)
# Without nvidia-smi, a GPU, or a CUDA-enabled torch it stops at once with one line (exit 1).
set -uo pipefail

fail() { echo "gpu_check: $*" >&2; exit 1; }

command -v nvidia-smi >/dev/null 2>&1 || fail "no CUDA here: nvidia-smi not found (run this on a machine with an NVIDIA GPU)"
nvidia-smi -L 2>/dev/null | grep -q '^GPU' || fail "no CUDA here: nvidia-smi lists no GPU"

cd "$(dirname "$0")/.." || fail "cannot enter the repository"
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
"$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null \
    || fail "no CUDA here: torch ($PY) sees no CUDA device (torch.cuda.is_available() is False)"

stamp=$(date +%Y%m%d-%H%M%S)
target=${1:-${OUT:-.}}
if [ -d "$target" ]; then out="${target%/}/gpu-check-$stamp.txt"; else out=$target; fi
mkdir -p "$(dirname "$out")" && : > "$out" || fail "cannot write $out"

export CUBLAS_WORKSPACE_CONFIG=${CUBLAS_WORKSPACE_CONFIG:-:4096:8}  # deterministic cuBLAS (resume test)
export RAY_USAGE_STATS_ENABLED=0 PYTHONUNBUFFERED=1
BUDGET=${CHECK_BUDGET_S:-465}
start=$SECONDS
summary=()
status=0

log() { echo "$*" | tee -a "$out"; }

# step NAME LIMIT_S COMMAND...: run under min(LIMIT_S, what is left of the budget), output into $out.
step() {
    local name=$1 limit=$2; shift 2
    local left=$((BUDGET - (SECONDS - start)))
    if [ "$left" -lt 20 ]; then
        summary+=("$name: skipped (budget of ${BUDGET}s spent)"); status=1; return
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    log ""
    log "## $name (limit ${limit}s)"
    log "\$ $*"
    local t0=$SECONDS rc
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$out"
    rc=${PIPESTATUS[0]}
    local took=$((SECONDS - t0))
    case $rc in
        0) summary+=("$name: ok in ${took}s") ;;
        124|137) summary+=("$name: TIMED OUT after ${took}s"); status=1 ;;
        *) summary+=("$name: FAILED (exit $rc) after ${took}s"); status=1 ;;
    esac
}

log "# GPU check $stamp"
log "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
log "$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null)"
log "$("$PY" -c 'import torch; print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, bf16 {torch.cuda.is_bf16_supported()}")')"
log "cpu cores: $(nproc)"

step "CUDA tests" 210 "$PY" -m pytest -m cuda tests/test_cuda.py -q -rs -p no:cacheprovider --durations=5
step "train throughput: resident" 60 "$PY" bench/train_throughput.py --rounds 3 --workers 0 4 \
    --set train.device=cuda
step "train throughput: resident, channels_last" 60 "$PY" bench/train_throughput.py --rounds 3 --workers 0 4 \
    --set train.device=cuda --set train.channels_last=true
step "train throughput: streamed (data.loader=stream)" 60 "$PY" bench/train_throughput.py --rounds 3 \
    --workers 0 4 --set train.device=cuda --set data.loader=stream --set data.workers=4
step "model overhead (CPU of this machine)" 75 "$PY" bench/model_overhead.py --repeats 16 --fold-repeats 8 \
    --threads 4

log ""
log "## summary ($((SECONDS - start))s of ${BUDGET}s)"
for line in "${summary[@]}"; do log "- $line"; done
log "figures written to $out"
exit $status
