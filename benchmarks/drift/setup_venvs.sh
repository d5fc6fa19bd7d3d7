#!/usr/bin/env bash
# One virtual environment per comparison tool, so their pins never meet dnnops's.
# Usage: bash benchmarks/drift/setup_venvs.sh [evidently] [nannyml] [alibi-detect]
set -euo pipefail
cd "$(dirname "$0")"
tools=("${@:-evidently nannyml alibi-detect}")
for tool in ${tools[@]}; do
  venv=".venvs/${tool}"
  if [ ! -x "${venv}/bin/python" ]; then
    python3 -m venv "${venv}"
    "${venv}/bin/pip" install --quiet --upgrade pip
  fi
  pins=""
  if [ "${tool}" = "evidently" ]; then pins="pandas<3"; fi  # evidently 0.7 imports pandas 2 internals
  if [ "${tool}" = "alibi-detect" ]; then pins="pyarrow<18"; fi  # it pins numpy<2
  if [ "${tool}" = "nannyml" ]; then pins="statsmodels"; fi  # imported by its plots
  "${venv}/bin/pip" install --quiet "${tool}" pyarrow ${pins}
done
