"""Write the bundled MiniLM (weights in fp16, config in fp32) and the SST-2 files into one folder to carry to a GPU
machine: ``FOLDER/minilm`` (a ``save_pretrained`` folder that loads as float32) and ``FOLDER/data/sst2``.

    .venv/bin/python benchmarks/gpu/carry_model.py .gpu_carry
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import torch
from transformers import AutoModel, AutoTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gpu_study import SST2, minilm_dir  # noqa: E402

LIMIT = 50 * 2**20  # bytes, leaving room for the wheels and the working tree under 64 MiB


def main(folder: Path) -> None:
    target = folder / "minilm"
    shutil.rmtree(target, ignore_errors=True)
    model = AutoModel.from_pretrained(str(minilm_dir()), dtype=torch.float32).half()
    model.save_pretrained(str(target))
    AutoTokenizer.from_pretrained(str(minilm_dir())).save_pretrained(str(target))
    config = json.loads((target / "config.json").read_text())
    for key in ("dtype", "torch_dtype"):  # load as float32 (trained in fp32 / bf16 autocast), stored as fp16
        if key in config:
            config[key] = "float32"
    (target / "config.json").write_text(json.dumps(config, indent=2))
    loaded = AutoModel.from_pretrained(str(target))
    assert next(loaded.parameters()).dtype == torch.float32, next(loaded.parameters()).dtype
    data = folder / "data" / "sst2"
    data.mkdir(parents=True, exist_ok=True)
    for name in ("train.tsv.gz", "dev.tsv.gz"):
        shutil.copy2(SST2 / name, data / name)
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    print(f"{folder}: {size / 2**20:.1f} MiB")
    if size > LIMIT:
        raise SystemExit(f"{folder} holds {size / 2**20:.1f} MiB, over {LIMIT / 2**20:.0f} MiB")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else ".gpu_carry"))
