#!/usr/bin/env bash
# perf/gpu_check.sh [IMAGE_DIR] - everything a session with a GPU should run, in one call of < 8 minutes.
#
#   0. is there a GPU? (torch.cuda.is_available(); without one: "no GPU", exit 2, in seconds)
#   1. pip install --no-deps -e .   (offline: --no-index, first without build isolation)
#   2. python -m pytest -q -m gpu -x (the test files that mark any: kernel == twin on photo sizes,
#      cross-device decode)
#   3. python perf/bench_gpu.py DIR --model tric-wf2 --json $OUT/bench_gpu.json --max-seconds 240 (or less:
#      what is left: the model whose kernels device="auto" runs on a GPU), then the default, the fused model
#      tric-wf3 (CPU under device="auto" until these figures exist), on 4 of the images (--max-seconds 45)
#      DIR: $1, else 8 photo-like images of 768x512 / 512x768 generated into a temp folder (the tree's own
#      images, tests/fixtures and samples/, are at most 256x192: too small to say anything about a GPU)
#   4. nvidia-smi -L
#
# Every step runs under `timeout`, capped by what is left of TOTAL_S (default 450 s), so the whole script
# stays under 8 minutes. Logs go to $OUT (default ./gpu_out): gpu_check.log (the summary), pip.log,
# pytest.log, bench_gpu.log, bench_gpu.json, nvidia-smi.txt. Exit code: 0 all passed, 2 no GPU,
# else the first failing step's code (124: it timed out).
set -u
cd "$(dirname "$0")/.." || exit 1
OUT="${OUT:-./gpu_out}"
PY="${PYTHON:-python}"
TOTAL_S="${TOTAL_S:-450}"
BENCH_MAX_S=240
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
LOG="$OUT/gpu_check.log"
: > "$LOG"
T0=$(date +%s)
STATUS=0

log() { echo "[gpu_check +$(( $(date +%s) - T0 ))s] $*" | tee -a "$LOG"; }
left() { echo $(( TOTAL_S - ($(date +%s) - T0) )); }

# step NAME CAP_S LOGFILE CMD... : run CMD under timeout min(CAP_S, time left), output to LOGFILE
step() {
    local name=$1 cap=$2 logfile=$3 rc t
    shift 3
    t=$(left)
    (( t > cap )) && t=$cap
    if (( t < 5 )); then
        log "$name: SKIPPED (no time left of ${TOTAL_S} s)"
        (( STATUS == 0 )) && STATUS=124
        return 124
    fi
    local s=$(date +%s)
    timeout -k 5 "$t" "$@" > "$logfile" 2>&1
    rc=$?
    log "$name: rc=$rc in $(( $(date +%s) - s )) s (limit $t s; log $logfile)"
    (( rc != 0 && STATUS == 0 )) && STATUS=$rc
    return $rc
}

log "repo $(pwd); out $OUT; python $(command -v "$PY"); budget ${TOTAL_S} s"

# 0. GPU?
if ! timeout 60 "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" >> "$LOG" 2>&1; then
    log "no GPU: torch sees no CUDA device here (nothing to check)"
    command -v nvidia-smi > /dev/null && timeout 10 nvidia-smi -L >> "$LOG" 2>&1
    exit 2
fi
"$PY" -c "import torch, triton; print('gpu:', torch.cuda.get_device_name(0), '| torch', torch.__version__,
    '| triton', triton.__version__)" 2>&1 | tee -a "$LOG"

# 1. install (no network on the device machine)
PIP="\"$PY\" -m pip install -q --no-index --no-deps"
step "pip install" 90 "$OUT/pip.log" bash -c "$PIP --no-build-isolation -e . || $PIP -e ."
if ! "$PY" -c "import tricodec.kernels.wavefront_encode" >> "$OUT/pip.log" 2>&1; then
    log "tricodec.kernels cannot be imported (see pip.log); stopping"
    exit 1
fi

# 2. gpu-marked tests: the files that mark any (the same tests as `-m gpu tests/`, without collecting
#    modules whose optional imports the device machine may lack)
GPU_TESTS=$(grep -l "mark\.gpu" tests/test_*.py)
step "pytest -m gpu" 150 "$OUT/pytest.log" "$PY" -m pytest -q -m gpu -x -p no:cacheprovider ${GPU_TESTS:-tests/}
tail -n 15 "$OUT/pytest.log"

# 3. benchmark
IMG_DIR="${1:-}"
TMP_IMG=""
if [[ -z "$IMG_DIR" ]]; then
    TMP_IMG="$(mktemp -d)"
    trap 'rm -rf "$TMP_IMG"' EXIT
    IMG_DIR="$TMP_IMG"
    timeout 60 "$PY" - "$IMG_DIR" >> "$LOG" 2>&1 <<'EOF'
import sys
import numpy as np
from PIL import Image

def photo_like(h, w, c, seed):
    """Smooth fields at three scales plus a little noise: codes like a photo (~3-5 bits a sample)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, c))
    for cell, amp in ((64, 0.6), (16, 0.3), (4, 0.1)):
        small = rng.uniform(0, 255, (max(2, h // cell), max(2, w // cell), c)).astype(np.float32)
        img += amp * np.stack([np.asarray(Image.fromarray(small[:, :, k]).resize((w, h), Image.BICUBIC))
                               for k in range(c)], axis=2)
    img += rng.normal(0, 2.0, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)

shapes = [(512, 768, 3)] * 6 + [(768, 512, 3), (512, 768, 1)]
for i, (h, w, c) in enumerate(shapes):
    a = photo_like(h, w, c, seed=i)
    Image.fromarray(a[:, :, 0] if c == 1 else a).save(f"{sys.argv[1]}/photo_{i:02d}_{w}x{h}x{c}.png")
print(f"generated {len(shapes)} photo-like images in {sys.argv[1]}")
EOF
fi
log "bench images: $IMG_DIR ($(ls "$IMG_DIR" | wc -l) files)"
BENCH_S=$(( $(left) - 130 ))
(( BENCH_S > BENCH_MAX_S )) && BENCH_S=$BENCH_MAX_S
(( BENCH_S < 10 )) && BENCH_S=10
step "bench_gpu" $(( BENCH_S + 60 )) "$OUT/bench_gpu.log" \
    "$PY" perf/bench_gpu.py "$IMG_DIR" --model tric-wf2 --json "$OUT/bench_gpu.json" --max-seconds "$BENCH_S"
sed -n '/^## bench_gpu/,$p' "$OUT/bench_gpu.log"
grep -A20 MISMATCH "$OUT/bench_gpu.log" | head -n 20
# 3b. the default, the fused model (tric-wf3: its own kernels), single images only, what is left
step "bench_gpu tric-wf3" $(( $(left) - 15 )) "$OUT/bench_gpu_wf3.log" \
    "$PY" perf/bench_gpu.py "$IMG_DIR" --model tric-wf3 --batch-sizes "" --limit 4 \
    --json "$OUT/bench_gpu_wf3.json" --max-seconds 45
sed -n '/^## bench_gpu/,$p' "$OUT/bench_gpu_wf3.log"

# 4. the machine
timeout 10 nvidia-smi -L 2>&1 | tee "$OUT/nvidia-smi.txt" | tee -a "$LOG"

log "done: status $STATUS in $(( $(date +%s) - T0 )) s"
exit $STATUS
