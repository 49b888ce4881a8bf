#!/usr/bin/env bash
# Fetch the public datasets from their official sources into DIR (default
# ../shared/data), in the layout configs/*.yaml expect. Needs internet access;
# the shared copy already holds them where it is not reachable.
#   scripts/fetch_data.sh [DIR]
set -euo pipefail
dir="${1:-${SEMCTR_DATA:-$(dirname "$0")/../../shared/data}}"
mkdir -p "$dir"
if [ ! -f "$dir/ml-100k/u.data" ]; then
  tmp="$(mktemp -d)"
  curl -fsSL -o "$tmp/ml-100k.zip" https://files.grouplens.org/datasets/movielens/ml-100k.zip
  (cd "$dir" && unzip -q -o "$tmp/ml-100k.zip" 'ml-100k/*')
  rm -rf "$tmp"
fi
echo "ml-100k: $(wc -l < "$dir/ml-100k/u.data") ratings in $dir/ml-100k"
# Criteo Kaggle DAC and Avazu have no stable public download URL (Kaggle
# login); use the samples in ../shared/data or `semctr gen-criteo`.
