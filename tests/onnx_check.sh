#!/usr/bin/env bash
# Runs tests/onnx_check.py (ONNX export checks, see there) with onnxruntime,
# onnx, numpy and xxhash from a venv beside the semctr binary under test
# ($SEMCTR_BIN's folder, e.g. build/onnx-venv), created and filled from PyPI
# on first use. These are test-only dependencies: semctr itself never needs
# Python or ONNX Runtime. SEMCTR_ONNX_VENV overrides the venv's location.
# Exit status: the check's, or 3 when the packages cannot be installed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${SEMCTR_ONNX_VENV:-$(dirname "${SEMCTR_BIN:?SEMCTR_BIN not set (run through make test)}")/onnx-venv}
. "$here/test_venv.sh"
ensure_test_venv onnx_check "$venv" "onnxruntime, onnx, numpy, xxhash" onnxruntime onnx numpy xxhash
flock -u 9
exec "$venv/bin/python" "$here/onnx_check.py" "$@"
