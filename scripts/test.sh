#!/usr/bin/env bash
# The README's test command (and CI's): set up if needed, lint, type-check, run every test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
# The device tests drive the real adb client against the simulated device.
if ! command -v adb >/dev/null 2>&1; then
  echo "test: installing Debian's adb for the device end-to-end tests" >&2
  (apt-get update -qq && apt-get install -y -qq adb >/dev/null) || echo "test: adb not installed; device e2e tests will skip" >&2
fi
if [ -f ../shared/weights/SINet_EG1800.pth ]; then
  .venv/bin/sinet-deploy weights import ../shared/weights/SINet_EG1800.pth
fi
.venv/bin/ruff check sinet_deploy tests
.venv/bin/ruff format --check sinet_deploy tests
.venv/bin/mypy
.venv/bin/lint-imports --no-cache
.venv/bin/pytest -q "$@"
if [ -x android_demo/jvm-test.sh ]; then
  bash android_demo/jvm-test.sh
fi
# Informational, never fails the run: this machine's int8-vs-fp32 TFLite latency (how far int8
# can go depends on the CPU's int8 dot-product instructions; the log records both).
if [ -d ../shared/data/calib ] && [ "${SKIP_INT8_LATENCY:-0}" != 1 ]; then
  echo "== int8 vs fp32 latency on this machine (informational) =="
  scratch=$(mktemp -d)
  bash scripts/int8_latency.sh "$scratch" || echo "int8 latency measurement failed (not a test)"
  rm -rf "$scratch"
fi
