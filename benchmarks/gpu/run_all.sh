#!/usr/bin/env bash
# Every GPU measurement of lmtune in one call on a GPU machine (about 9 minutes on one H100), from the repository
# root: install the carried wheels, then the throughput table (1 process, processes packed, fused groups of
# 4/8/16/32, peak memory per trial, utilisation sampled by nvidia-smi), the tests marked `gpu` (a fused MiniLM
# member against the same trial alone, bf16 tolerance), and the whole SST-2 study against Optuna + Trainer.
# Needs .whl/ and .gpu_carry/ from benchmarks/gpu/prepare.sh. Logs and tables go to $OUT (default ./gpu_out).
# Stage limits (seconds) can be changed: THROUGHPUT_S, TESTS_S, STUDY_S; the study's runs: STUDY_SIDES.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/gpu_out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "installing the carried wheels failed"; exit 1; }
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export LMTUNE_SHARED=$PWD/.gpu_carry LMTUNE_MINILM_DIR=$PWD/.gpu_carry/minilm

nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader -lms 500 >"$OUT/utilisation.csv" &
SMI=$!
trap 'kill $SMI 2>/dev/null' EXIT

stage() {  # stage NAME LIMIT_S COMMAND...: run with a time limit, keep its log, go on whatever happens
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit} s) $(date -u +%T)"
    timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
    echo "== $name: exit ${PIPESTATUS[0]} $(date -u +%T)"
}

stage versions 60 python3 -c "import torch, transformers, optuna, lmtune; print(torch.__version__, transformers.__version__, optuna.__version__, torch.cuda.get_device_name())"
stage throughput "${THROUGHPUT_S:-180}" python3 benchmarks/gpu_throughput.py --trials 8 --steps 10 --gpu-steps 100 \
    --groups 4,8,16,32 --packed 4,8,14
stage gpu_tests "${TESTS_S:-120}" python3 -m pytest -m gpu -q -p no:cacheprovider \
    tests/nlp/fused/test_minilm_fused.py tests/integrations/test_hf.py
stage study "${STUDY_S:-330}" python3 benchmarks/gpu_throughput.py --study --device cuda \
    --sides "${STUDY_SIDES:-default,fused,optuna}"
python3 - "$OUT/utilisation.csv" <<'PY'
import sys
rows = [line.split(",") for line in open(sys.argv[1]) if line.count(",") == 2]
busy = [float(r[1].strip().rstrip(" %")) for r in rows if r[1].strip().rstrip(" %").replace(".", "").isdigit()]
if busy:
    print(f"GPU utilisation: mean {sum(busy) / len(busy):.0f}%, max {max(busy):.0f}% over {len(busy)} samples")
PY
