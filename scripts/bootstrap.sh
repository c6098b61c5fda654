#!/usr/bin/env bash
# Sets up (or refreshes) the project's virtual environment; idempotent.
#
#   scripts/bootstrap.sh            # venv at ./.venv (override with VENV=...)
#
# Steps, each skipped when already satisfied:
#   1. venv with a setuptools that still ships pkg_resources (< 82)
#   2. torch + torchvision (requirements-torch.txt)
#   3. the pure-Python stack (requirements.txt)
#   4. mmcv 2.1.0 with compiled ops, built from its PyPI sdist against the
#      installed torch (C++ standard raised to C++20), wheel cached per torch
#   5. this project, editable, which compiles ops_dcnv3
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
PYTHON_BIN=${PYTHON_BIN:-python3}
MMCV_VERSION=2.1.0
WHEEL_CACHE=${INTERNIMAGE_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/internimage/wheels}

log() { printf '[bootstrap] %s\n' "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
    log "creating venv at $VENV"
    "$PYTHON_BIN" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)
# This machine's extra indexes warn about every package they lack; keep pip's
# exit status while dropping that noise.
pip_q() { "${PIP[@]}" "$@" 2> >(grep -v "is ignored" >&2); }
pip_q install -q 'setuptools>=77.0.3,<82' wheel ninja psutil

log "torch + torchvision"
pip_q install -q -r "$ROOT/requirements-torch.txt"
pip_q install -q -r "$ROOT/requirements.txt"
"$PY" -c 'import pkg_resources' 2>/dev/null || {
    log "setuptools $("$PY" -c 'import setuptools; print(setuptools.__version__)') has no pkg_resources; mmcv and mmengine need setuptools<82"
    exit 1
}

mmcv_ok() {
    "$PY" - <<EOF >/dev/null 2>&1
import mmcv, torch
assert mmcv.__version__ == '$MMCV_VERSION', mmcv.__version__
from mmcv.ops import nms
boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.]])
keep = nms(boxes, torch.tensor([0.9, 0.8]), 0.5)[1]
assert keep.tolist() == [0], keep
EOF
}

build_mmcv_wheel() {
    local dest=$1 work
    work=$(mktemp -d)
    log "building mmcv $MMCV_VERSION with ops against torch $TORCH_TAG (about 16 min on 2 cores)"
    pip_q download -q --no-deps --no-binary mmcv --no-build-isolation \
        "mmcv==$MMCV_VERSION" -d "$work"
    tar -xzf "$work"/mmcv-"$MMCV_VERSION".tar.gz -C "$work"
    # mmcv 2.1.0 hard-codes -std=c++17; torch >= 2.14 headers need C++20.
    sed -i 's/-std=c++17/-std=c++20/g' "$work/mmcv-$MMCV_VERSION/setup.py"
    grep -q -- '-std=c++20' "$work/mmcv-$MMCV_VERSION/setup.py"
    mkdir -p "$dest"
    MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
        pip_q wheel -q --no-deps --no-build-isolation --no-cache-dir \
        -w "$dest" "$work/mmcv-$MMCV_VERSION"
    rm -rf "$work"
}

if mmcv_ok; then
    log "mmcv $MMCV_VERSION with ops: already installed"
else
    # A wheel compiled against one torch breaks at import under another, so
    # the cache is keyed by the exact torch build.
    TORCH_TAG=$("$PY" -c 'import torch; print(torch.__version__.replace("+", "_"))')
    dest="$WHEEL_CACHE/torch-$TORCH_TAG"
    for attempt in cached fresh; do
        if [ "$attempt" = fresh ] || ! ls "$dest"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1; then
            rm -f "$dest"/mmcv-"$MMCV_VERSION"-*.whl
            build_mmcv_wheel "$dest"
        fi
        pip_q install -q --no-deps --force-reinstall "$dest"/mmcv-"$MMCV_VERSION"-*.whl
        if mmcv_ok; then break; fi
        log "mmcv from the $attempt wheel does not load its ops"
        [ "$attempt" = fresh ] && { log "mmcv build is broken"; exit 1; }
    done
    log "mmcv $MMCV_VERSION with ops: installed"
fi

# Rebuild the operator only when its sources changed (or it does not import).
ops_stamp="$VENV/.ops_dcnv3.sha256"
ops_hash=$(cd "$ROOT" && cat setup.py $(find ops_dcnv3/csrc -type f | sort) | sha256sum | cut -d' ' -f1)
if [ "$(cat "$ops_stamp" 2>/dev/null)" = "$ops_hash" ] \
        && "$PY" -c 'import ops_dcnv3._C, internimage' >/dev/null 2>&1; then
    log "internimage + ops_dcnv3: already installed"
else
    log "installing internimage + ops_dcnv3 (editable; compiles the operator)"
    pip_q install -q --no-build-isolation --no-deps -e "$ROOT"
    "$PY" -c 'import ops_dcnv3._C, internimage'
    echo "$ops_hash" > "$ops_stamp"
fi
log "ready: $VENV"
