#!/usr/bin/env bash
# The GPU benchmark (scripts/bench_gpu.py) on a machine with no network, e.g. one NVIDIA H200.
#
# Where pip reaches PyPI, once, from the repo root (the wheels are never committed):
#   echo /.whl/ >> .git/info/exclude && bash scripts/gpu_check.sh --download
# fetches, for CPython 3.12 on x86-64 Linux, what that machine lacks (about 5.7 MB):
# segment-anything and open_clip_torch, open_clip's ftfy + wcwidth, and the engine's pydantic
# (+ pydantic-core, annotated-types, typing-inspection, typing-extensions >= 4.16) and pycocotools.
#
# Then there, from the repo root, with .whl/ carried along:
#   bash scripts/gpu_check.sh            # = python3 scripts/bench_gpu.py --json $OUT/gpu.json
# extra arguments go to bench_gpu.py (e.g. --images 8). Output: $OUT/gpu.json and $OUT/gpu.log
# ($OUT defaults to ./out). Expected: under 5 minutes on one H200; stopped after 9.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=${WHEELS:-.whl}
PACKAGES=(segment-anything==1.0 open_clip_torch==3.3.0 ftfy==6.3.1 wcwidth==0.9.4 pydantic==2.14.4
          pydantic_core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 typing_extensions==4.16.0
          pycocotools==2.0.11)

if [ "${1:-}" = "--download" ]; then
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$WHEELS" "${PACKAGES[@]}"
    du -ch "$WHEELS"/*.whl | tail -1
    exit 0
fi

if compgen -G "$WHEELS/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
OUT=${OUT:-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
PYTHONUNBUFFERED=1 timeout 540 python3 scripts/bench_gpu.py --json "$OUT/gpu.json" "$@" 2>&1 | tee "$OUT/gpu.log"
