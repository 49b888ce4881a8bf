#!/usr/bin/env bash
# Runs the Python package's tests (python/tests, pytest) in a venv beside the
# semctr binary under test ($SEMCTR_BIN's folder, e.g. build/py-venv): pytest,
# numpy and pandas from PyPI on first use (test-only; the package itself needs
# numpy alone), then `pip install ./python` on every run, so the package tested
# is built from the current sources (its C objects are kept in
# python/build/semctr-c, so a rebuild compiles only what changed).
# SEMCTR_PY_VENV overrides the venv's location. Exit status: pytest's, or 3
# when the packages cannot be installed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
venv=${SEMCTR_PY_VENV:-$(dirname "${SEMCTR_BIN:?SEMCTR_BIN not set (run through make test-python)}")/py-venv}
. "$here/test_venv.sh"
ensure_test_venv python_check "$venv" "pytest, numpy, pandas" pytest numpy pandas
"$venv/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$root/python" >&2
flock -u 9
# from another folder, so `import semctr` is the installed package, not python/semctr
cd "$(dirname "$venv")"
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$root/python/tests" "$@"
