#!/usr/bin/env bash
# Build the pinned mmxmodal environment into .venv (idempotent).
#
#   bash tools/setup_env.sh            # called by `make env`, `make test`, `make demo`
#
# Environment variables:
#   VENV              target virtual environment (default: .venv)
#   PYTHON            interpreter used to create it (default: python3)
#   MMXMODAL_CACHE    wheel cache outside the repo (default: ~/.cache/mmxmodal)
#   MAX_JOBS          parallel compile jobs for mmcv (default: every core, whatever OMP_NUM_THREADS says;
#                     GNU nproc honours OMP_NUM_THREADS, so `nproc --all` is used)
#   FORCE_CUDA=1      build mmcv's CUDA ops (automatic when torch sees a GPU)
#
# The slow step is mmcv 2.1.0, built from its source distribution with its ops. The built wheel is cached under
# $MMXMODAL_CACHE/wheels/<key>/ where the key names the mmcv, torch, Python and CUDA versions, so later runs (and
# other clones on the same machine) install it in seconds.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
CACHE=${MMXMODAL_CACHE:-$HOME/.cache/mmxmodal}
CONSTRAINTS="$ROOT/requirements/constraints.txt"
STAMP="$VENV/.mmxmodal-env"
# The stamp holds a hash of everything that defines the environment.
MMCV_BUILD_SETUPTOOLS='setuptools==69.5.1'
WANT=$(cat "$CONSTRAINTS" "$ROOT/tools/setup_env.sh" "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)

log() { printf '[setup_env %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  log "environment $VENV is up to date"
  exit 0
fi

pin() { grep -E "^$1==" "$CONSTRAINTS" | head -1; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi
PY="$ROOT/$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)

log "build tools"
"${PIP[@]}" install -q -c "$CONSTRAINTS" setuptools wheel ninja

log "torch + torchvision"
"${PIP[@]}" install -q -c "$CONSTRAINTS" torch torchvision

# ---------------------------------------------------------------- mmcv (built from source with ops, cached)
MMCV_PIN=$(pin mmcv)
MMCV_VER=${MMCV_PIN#mmcv==}
read -r TORCH_VER PY_TAG CUDA_TAG < <("$PY" - <<'EOF'
import sys, torch, os
cuda = torch.cuda.is_available() or os.environ.get('FORCE_CUDA') == '1'
tag = ('cu' + torch.version.cuda.replace('.', '')) if (cuda and torch.version.cuda) else 'cpu'
print(torch.__version__.split('+')[0], f'cp{sys.version_info.major}{sys.version_info.minor}', tag)
EOF
)
KEY="mmcv-${MMCV_VER}_torch-${TORCH_VER}_${PY_TAG}_${CUDA_TAG}"
WHEEL_DIR="$CACHE/wheels/$KEY"
if "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VER'" 2>/dev/null; then
  log "mmcv $MMCV_VER with ops already installed"
else
  if ! ls "$WHEEL_DIR"/mmcv-*.whl >/dev/null 2>&1; then
    log "building mmcv $MMCV_VER with ops for $KEY (about 10 min on 2 cores; cached afterwards)"
    BUILD=$(mktemp -d)
    trap 'rm -rf "$BUILD"' EXIT
    "${PIP[@]}" download -q --no-deps --no-binary :all: --no-build-isolation -d "$BUILD" "mmcv==$MMCV_VER"
    tar -xzf "$BUILD"/mmcv-"$MMCV_VER".tar.gz -C "$BUILD"
    SRC="$BUILD/mmcv-$MMCV_VER"
    # torch >= 2.10 headers need C++20; mmcv 2.1.0's setup.py hard-codes -std=c++17.
    sed -i 's/-std=c++17/-std=c++20/g; s/std=c++14/std=c++20/g' "$SRC/setup.py"
    if [ "$CUDA_TAG" != cpu ]; then export FORCE_CUDA=1; fi
    # mmcv 2.1.0's setup.py needs setuptools<70; torch needs >=77 at run time: swap for the build only.
    "${PIP[@]}" install -q "$MMCV_BUILD_SETUPTOOLS" 2>/dev/null
    JOBS=${MAX_JOBS:-$(nproc --all)}
    log "compiling mmcv ops with ninja -j $JOBS (cores: $(nproc --all), OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset})"
    (cd "$SRC" && MMCV_WITH_OPS=1 MAX_JOBS=$JOBS OMP_NUM_THREADS=$JOBS \
        "${PIP[@]}" wheel -q --no-deps --no-build-isolation -w "$BUILD/dist" .)
    "${PIP[@]}" install -q -c "$CONSTRAINTS" setuptools
    mkdir -p "$WHEEL_DIR"
    cp "$BUILD"/dist/mmcv-*.whl "$WHEEL_DIR/"
    log "cached $(ls "$WHEEL_DIR")"
  fi
  "${PIP[@]}" install -q --no-deps --force-reinstall "$WHEEL_DIR"/mmcv-*.whl
fi

# ---------------------------------------------------------------- the rest of the stack
# mmdet3d's wheel lists open3d (optional in practice, >300 MB) and lyft-dataset-sdk lists dev tools (black,
# flake8, pytest, plotly): install both without their dependency lists and name what they really import.
log "OpenMMLab stack and data tools"
"${PIP[@]}" install -q -c "$CONSTRAINTS" --no-deps mmdet3d lyft-dataset-sdk
"${PIP[@]}" install -q -c "$CONSTRAINTS" \
  mmengine mmdet nuscenes-devkit spconv-cu120 cumm-cu120 numpy \
  numba networkx plyfile scikit-image tensorboard trimesh \
  pyquaternion shapely pandas scipy scikit-learn matplotlib opencv-python-headless pycocotools terminaltables \
  open-clip-torch timm h5py pytest

log "mmxmodal (editable)"
"${PIP[@]}" install -q -c "$CONSTRAINTS" --no-deps --no-build-isolation -e .

"$PY" - <<'EOF'
import mmcv, mmdet, mmdet3d, mmengine, torch, numpy, spconv, nuscenes, mmcv.ops  # noqa: F401
import mmxmodal  # noqa: F401
print(f'torch {torch.__version__} numpy {numpy.__version__} mmengine {mmengine.__version__} '
      f'mmcv {mmcv.__version__} mmdet {mmdet.__version__} mmdet3d {mmdet3d.__version__}')
EOF
echo "$WANT" > "$STAMP"
log "environment ready in $VENV"
