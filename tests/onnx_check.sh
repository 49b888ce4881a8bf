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
# tests run in parallel: one of them creates the venv, the others wait for it
exec 9>"$venv.lock"
flock 9
if ! "$venv/bin/python" -c "import onnxruntime, onnx, numpy, xxhash" 2>/dev/null; then
  echo "onnx_check: installing onnxruntime, onnx, numpy and xxhash into $venv (test-only)" >&2
  rm -rf "$venv"
  if ! { python3 -m venv "$venv" && "$venv/bin/pip" install -q --disable-pip-version-check onnxruntime onnx numpy xxhash; } >&2; then
    echo "onnx_check: could not install onnxruntime, onnx, numpy and xxhash from PyPI into $venv" >&2
    exit 3
  fi
fi
flock -u 9
exec "$venv/bin/python" "$here/onnx_check.py" "$@"
