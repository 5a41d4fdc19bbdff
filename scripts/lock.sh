#!/usr/bin/env bash
# Re-resolve the locked environment from pyproject.toml (the library keeps its ranges there) and
# constraints.txt (this project's machine pins). Run after changing a dependency; commit the result.
# torch resolves to the local CPU wheel in /opt/wheels (PyPI's build of the same version pulls CUDA).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
uv=${UV:-uv}
"$uv" pip compile pyproject.toml --extra all --extra dev \
  -c constraints.txt --find-links /opt/wheels \
  --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
  --generate-hashes --no-header --quiet -o requirements.lock
# The bootstrap: the exact uv the set-up installs into .venv before syncing the lock.
echo "uv==$("$uv" --version | cut -d' ' -f2)" | "$uv" pip compile - --generate-hashes --no-header \
  --quiet --python-version 3.11 -o scripts/uv.lock
