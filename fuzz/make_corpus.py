"""Writes the seed corpora of the fuzz targets (run from the repository root)."""
from pathlib import Path

import torch
from safetensors.torch import save

HERE = Path(__file__).resolve().parent


def main():
    out = HERE / "corpus" / "safetensors"
    out.mkdir(parents=True, exist_ok=True)
    seeds = {
        "small": {"a": torch.arange(6, dtype=torch.float32).reshape(2, 3)},
        "dtypes": {f"t{i}": torch.ones(2, dtype=dt) for i, dt in
                   enumerate([torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int8, torch.uint8,
                              torch.bool, torch.int32, torch.int16])},
        "empty": {"e": torch.zeros(0, 3)},
        "scalar": {"s": torch.tensor(1.5)},
    }
    for name, tensors in seeds.items():
        (out / f"{name}.safetensors").write_bytes(save(tensors, metadata={"format": "pt"} if name == "small" else None))


def npy_corpus():
    import io

    import numpy as np
    out = HERE / "corpus" / "npy"
    out.mkdir(parents=True, exist_ok=True)
    seeds = {"f4": np.arange(6, dtype="<f4").reshape(2, 3), "i8_fortran": np.asfortranarray(np.arange(6).reshape(2, 3)),
             "bool": np.array([True, False]), "c16_be": np.array([1 + 2j], dtype=">c16"), "scalar": np.float64(3.5),
             "empty": np.zeros((0, 2), dtype="<i2")}
    for name, a in seeds.items():
        buf = io.BytesIO()
        np.save(buf, a)
        (out / f"{name}.npy").write_bytes(buf.getvalue())


if __name__ == "__main__":
    npy_corpus()
    main()
