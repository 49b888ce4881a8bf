# Sourced by the *_check.sh scripts that need PyPI packages for a test (never
# semctr itself): a cached venv, created and filled on first use.
#
# ensure_test_venv WHO VENV MODULES PACKAGE...
#   makes sure VENV's python imports MODULES ("a, b"), else recreates VENV and
#   pip-installs the PACKAGEs (exit 3, naming them, when that fails). Tests
#   run in parallel: the lock VENV.lock is taken on fd 9 and kept, so the
#   caller can finish its own setup under it and then release it (flock -u 9).
ensure_test_venv() {
  local who=$1 venv=$2 modules=$3
  shift 3
  exec 9>"$venv.lock"
  flock 9
  if ! "$venv/bin/python" -c "import $modules" 2>/dev/null; then
    echo "$who: installing $* into $venv (test-only)" >&2
    rm -rf "$venv"
    if ! { python3 -m venv "$venv" && "$venv/bin/pip" install -q --disable-pip-version-check "$@"; } >&2; then
      echo "$who: could not install $* from PyPI into $venv" >&2
      exit 3
    fi
  fi
}
