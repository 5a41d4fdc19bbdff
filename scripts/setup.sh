#!/usr/bin/env bash
# Create .venv in the repo root when missing and install the whole toolchain into it.
# Idempotent: re-installs only when pyproject.toml or constraints.txt changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PY --version)" >&2
  "$PY" -m venv .venv
fi
stamp=.venv/.sinet-deploy-installed
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "setup: installing sinet-deploy and its toolchain into .venv (a few minutes the first time)" >&2
  # constraints.txt pins torch to the CPU build; without it pip resolves a multi-GB CUDA build.
  .venv/bin/pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[all,dev]"
  echo "$want" > "$stamp"
fi
# onnx2tf runs the `onnxsim` command: the venv's bin must be on PATH.
export PATH="$PWD/.venv/bin:$PATH"
