#!/usr/bin/env bash
# Fetch, where there is a network, the wheels bench/gpu/check.sh installs on a GPU machine that
# lacks them (a CUDA image with torch, numba-cuda, onnxruntime and OpenCV, but no pydantic).
# They land in .whl/ (add `/.whl/` to .git/info/exclude and carry it to the GPU machine).
#   bash bench/gpu/wheels.sh [PYTHON_VERSION]      # default 3.12
set -euo pipefail
cd "$(dirname "$0")/../.."
PYV="${1:-3.12}"
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$PYV" \
    --implementation cp --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl "pydantic==2.14.4" "pydantic-core==2.50.5" "annotated-types" "typing-inspection"
ls -l .whl
