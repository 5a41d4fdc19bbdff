#!/usr/bin/env bash
# Create .venv in the repo root when missing and install exactly the locked toolchain into it:
# requirements.lock (hash-pinned, made by scripts/lock.sh from pyproject.toml + constraints.txt),
# then this project itself, editable, without dependencies. Idempotent: re-syncs only when the
# lock or pyproject.toml changed. Sourced by main.sh and test.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PY --version)" >&2
  "$PY" -m venv .venv
fi
stamp=.venv/.sinet-deploy-installed
want=$(cat pyproject.toml requirements.lock scripts/uv.lock | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "setup: installing the locked toolchain into .venv (about a minute the first time)" >&2
  start=$SECONDS
  # uv itself comes hash-pinned from scripts/uv.lock; it installs the lock far faster than pip.
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps \
    --require-hashes -r scripts/uv.lock
  # torch is locked to the CPU wheel that lies in /opt/wheels on this project's machines.
  links=()
  [ -d /opt/wheels ] && links=(--find-links /opt/wheels)
  VIRTUAL_ENV="$PWD/.venv" .venv/bin/uv pip sync --quiet --python .venv/bin/python \
    "${links[@]}" requirements.lock
  VIRTUAL_ENV="$PWD/.venv" .venv/bin/uv pip install --quiet --python .venv/bin/python \
    --no-deps -e .
  echo "$want" > "$stamp"
  echo "setup: done in $((SECONDS - start)) s ($(du -sh .venv | cut -f1) in .venv)" >&2
fi
# onnx2tf runs the `onnxsim` command: the venv's bin must be on PATH.
export PATH="$PWD/.venv/bin:$PATH"
