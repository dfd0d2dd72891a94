#!/usr/bin/env bash
# The GPU checks of issue 14 on a bare Linux machine with an NVIDIA GPU and no network:
# Python 3.12 with numba-cuda, torch, onnxruntime (and numpy, OpenCV) already installed.
#
#   bash bench/gpu/check.sh [OUT.json]        # default: $OUT/gpu.json, else bench/results/gpu.json
#   bash bench/gpu/check.sh --quick OUT.json  # tiny sizes: exercises the script (no figures)
#   (PARTSIGHT_NO_INSTALL=1: leave the Python environment alone, use PYTHONPATH)
#
# It installs this working tree without dependencies (pip -e, or PYTHONPATH if pip cannot),
# installs any Python dependency that is missing from wheels in $PARTSIGHT_WHEELS (default
# .whl/, see bench/gpu/wheels.sh; pydantic is the one a plain CUDA image lacks), then runs
# bench/gpu/check.py: (a) registration tests on the real CUDA target and CPU-vs-CUDA poses on
# 300 frames of 1024x1024, (b) GHT ms per frame on CUDA and CPU, (c) GPU- vs CPU-trained
# engine: s/epoch and test AUROC, (d) TensorRT if it imports, (e) the JSON. < 6 minutes.
set -uo pipefail
cd "$(dirname "$0")/../.."
QUICK=()
if [[ "${1:-}" == "--quick" ]]; then QUICK=(--quick); shift; fi
RESULT="${1:-${OUT:+$OUT/gpu.json}}"
RESULT="${RESULT:-bench/results/gpu.json}"
PY="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
say() { echo "[check.sh $(date +%H:%M:%S)] $*" >&2; }

say "python: $($PY -V 2>&1) at $(command -v "$PY")"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total \
    --format=csv,noheader >&2 || say "nvidia-smi: not found"

WHEELS="${PARTSIGHT_WHEELS:-.whl}"
missing=$("$PY" - <<'PY'
import importlib.util
need = {"numpy": "numpy", "cv2": "opencv-python-headless", "numba": "numba",
        "pydantic": "pydantic", "onnxruntime": "onnxruntime", "torch": "torch"}
print(" ".join(pkg for mod, pkg in need.items() if importlib.util.find_spec(mod) is None))
PY
)
if [[ -n "$missing" ]]; then
    say "missing Python packages: $missing"
    if compgen -G "$WHEELS/*.whl" >/dev/null; then
        "$PY" -m pip install -q --no-index --no-deps --target /tmp/partsight-site "$WHEELS"/*.whl \
            && export PYTHONPATH="/tmp/partsight-site${PYTHONPATH:+:$PYTHONPATH}" \
            && say "installed from $WHEELS: $(ls "$WHEELS" | tr '\n' ' ')"
    else
        say "no wheels in $WHEELS (bench/gpu/wheels.sh fetches them where there is a network)"
    fi
fi

if [[ -n "${PARTSIGHT_NO_INSTALL:-}" ]]; then
    say "PARTSIGHT_NO_INSTALL set: using PYTHONPATH, installing nothing"
elif "$PY" -m pip install -q --no-deps --no-build-isolation -e . >/tmp/partsight-pip.log 2>&1; then
    say "installed this working tree (pip -e, no dependencies)"
else
    say "pip -e failed ($(tail -1 /tmp/partsight-pip.log)); using PYTHONPATH"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

start=$(date +%s)
timeout 340 "$PY" bench/gpu/check.py --out "$RESULT" "${QUICK[@]}"
rc=$?
say "check.py exit $rc after $(( $(date +%s) - start )) s; results in $RESULT"
[[ -f "$RESULT" ]] && cat "$RESULT"
exit $rc
