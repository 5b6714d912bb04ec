#!/usr/bin/env bash
# Prepare, on a machine with network and this repository's environment, what the GPU run carries to a GPU machine
# that has PyTorch and transformers but nothing else of lmtune's: wheels of the missing packages (.whl/) and the
# MiniLM bundle saved in fp16 with the SST-2 files (.gpu_carry/). Both folders are git-ignored; together with the
# working tree they stay under 64 MiB.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-.venv/bin/python}
# The versions this repository's environment (and so CI) uses.
PACKAGES="optuna alembic Mako colorlog SQLAlchemy greenlet pydantic pydantic_core annotated-types typing-inspection typing_extensions"
PINS=$($PY - $PACKAGES <<'PY'
import importlib.metadata, sys
print(" ".join(f"{name}=={importlib.metadata.version(name)}" for name in sys.argv[1:]))
PY
)
rm -rf .whl && mkdir -p .whl
$PY -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl $PINS
$PY benchmarks/gpu/carry_model.py .gpu_carry
du -sh .whl .gpu_carry
