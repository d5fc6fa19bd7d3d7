#!/usr/bin/env bash
# One virtual environment per competing server, beside this script (git-ignored), each
# with the same torch build as dnnops's so the models compute identically.
set -euo pipefail
cd "$(dirname "$0")"
for server in litserve bentoml; do
  python3 -m venv ".venvs/$server"
  ".venvs/$server/bin/pip" install --quiet "${TORCH:-torch==2.13.0}" safetensors numpy "$server"
done
