#!/usr/bin/env bash
# The DCNv3 GPU checks in one go: build the CUDA kernels in place, run the GPU tests, then the
# operator and whole-model benchmarks. Each step's output is also saved to $OUT/<step>.log
# (default OUT: work_dirs/gpu_check); the script goes on after a failed step and exits 1 if any
# failed. The operator steps need only a Python with a CUDA build of torch; the backbone test
# and the model benchmark also need the OpenMMLab stack (`make setup`) and are skipped, with a
# note, without it.
#
#   PYTHON=.venv/bin/python scripts/gpu_check.sh    # after `make setup`
#   scripts/gpu_check.sh                            # any python3 whose torch sees a GPU
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON=${PYTHON:-python3}
OUT=${OUT:-$ROOT/work_dirs/gpu_check}
mkdir -p "$OUT"
failed=()

step() {
  local name=$1
  shift
  echo "== $name: $*"
  "$@" 2>&1 | tee "$OUT/$name.log"
  local rc=${PIPESTATUS[0]}
  if [ "$rc" -ne 0 ]; then
    echo "== $name failed (exit $rc)"
    failed+=("$name")
  fi
}

if ! "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "gpu_check: $PYTHON has no torch that sees a CUDA device" >&2
  exit 2
fi
"$PYTHON" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda,
                                  torch.cuda.get_device_name())' | tee "$OUT/device.log"

step build env FORCE_CUDA=1 MAX_JOBS="${MAX_JOBS:-8}" "$PYTHON" setup.py build_ext --inplace
if "$PYTHON" -c 'import mmengine, mmcv, mmpretrain' 2>/dev/null; then
  have_mm=1
  cuda_test_paths=(tests)
else
  have_mm=0
  cuda_test_paths=(tests/ops tests/kernels)  # the other test modules import the stack
fi
# The GPU tests are the ones marked `cuda` (tests/conftest.py); the build and CUDA-emulator
# checks of the kernel sources run as well.
step cuda_tests "$PYTHON" -m pytest -q -p no:cacheprovider -m cuda "${cuda_test_paths[@]}"
step kernel_build_tests "$PYTHON" -m pytest -q -p no:cacheprovider tests/kernels/test_build.py \
  tests/kernels/test_cuda_emulated.py
step bench_op "$PYTHON" tools/benchmark_dcnv3.py --device cuda --softmax-fusion

if [ "$have_mm" -eq 1 ]; then
  step bench_model_fp16 "$PYTHON" tools/benchmark_model.py --device cuda --dtype float16
  step bench_model_bf16 "$PYTHON" tools/benchmark_model.py --device cuda --dtype bfloat16
else
  echo "== skipped bench_model: mmengine/mmcv/mmpretrain not importable" \
    | tee "$OUT/skipped.log"
fi

if [ ${#failed[@]} -ne 0 ]; then
  echo "gpu_check: failed steps: ${failed[*]} (logs in $OUT)"
  exit 1
fi
echo "gpu_check: all steps passed (logs in $OUT)"
