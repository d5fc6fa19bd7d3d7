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
  "${venv}/bin/pip" install --quiet "${tool}" pyarrow
done
