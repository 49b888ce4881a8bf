#!/usr/bin/env bash
# Install the Debian packages semctr builds and tests with (run as root, or
# with sudo available). Idempotent. Used by the README's first command and CI.
set -euo pipefail
# python3-venv: tests/onnx_check.sh makes a venv for the ONNX export tests' PyPI packages
PKGS=(build-essential clang pkg-config python3 python3-pip python3-venv unzip curl
      libopenblas-dev libutf8proc-dev libpcre2-dev libyaml-dev libcjson-dev
      libxxhash-dev libmicrohttpd-dev libcriterion-dev wrk
      libopenmpi-dev openmpi-bin
      chromium)  # tests/test_report_render.sh renders `semctr report`'s page headless
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
drop() {  # remove package $1 from missing (an exact match)
  local keep=() p
  for p in ${missing[@]+"${missing[@]}"}; do [ "$p" = "$1" ] || keep+=("$p"); done
  missing=(${keep[@]+"${keep[@]}"})
}
# python3 from elsewhere (pyenv) with pip (and ensurepip, which venv needs) is as good as Debian's
if command -v python3 >/dev/null && python3 -m pip --version >/dev/null 2>&1; then
  drop python3; drop python3-pip
  if python3 -c "import ensurepip" 2>/dev/null; then drop python3-venv; fi
fi
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all Debian packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install_deps: installing ${missing[*]}"
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
