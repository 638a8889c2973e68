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


def pt_corpus():
    """torch.save files: a small CNN's state dict, views and shared storages, every
    dtype, nested dicts and an optimizer state dict."""
    out = HERE / "corpus" / "pt"
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    cnn = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 2), torch.nn.BatchNorm2d(2), torch.nn.Flatten(),
                              torch.nn.Linear(2, 2))
    base = torch.arange(12.0)
    opt = torch.optim.SGD(cnn.parameters(), lr=0.1, momentum=0.9)
    cnn(torch.randn(2, 1, 2, 2)).sum().backward()
    opt.step()
    seeds = {
        "cnn": cnn.state_dict(),
        "views": {"a": base[2:5], "b": base.view(3, 4).t(), "c": base.view(3, 4)[:, ::2], "e": base[:0]},
        "dtypes": {str(dt)[6:]: torch.ones(2, dtype=dt) for dt in
                   [torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.int32,
                    torch.int16, torch.int8, torch.uint8, torch.bool, torch.complex64, torch.complex128]},
        "nested": {"model": {"w": torch.ones(2)}, "epoch": 3, "lr": 0.5, "name": "x", "none": None,
                   "list": [torch.zeros(1), 2]},
        "optim": opt.state_dict(),
        "scalar": {"s": torch.tensor(1.5), "big": torch.tensor(2 ** 40)},
    }
    for name, obj in seeds.items():
        torch.save(obj, out / f"{name}.pt")
    torch.save({"p": torch.ones(2)}, out / "proto4.pt", pickle_protocol=4)


def npz_corpus():
    import numpy as np
    out = HERE / "corpus" / "npz"
    out.mkdir(parents=True, exist_ok=True)
    arrays = {"f": np.arange(6, dtype="<f4").reshape(2, 3), "i": np.array([1, 2], dtype=">i8"),
              "b": np.array([True]), "z": np.zeros((0, 2))}
    np.savez(out / "plain.npz", **arrays)
    np.savez_compressed(out / "compressed.npz", **arrays)
    np.savez(out / "one.npz", x=np.float64(2.5))


def idx_corpus():
    import gzip
    import struct
    out = HERE / "corpus" / "idx"
    out.mkdir(parents=True, exist_ok=True)
    images = bytes([0, 0, 8, 3]) + struct.pack(">III", 2, 3, 3) + bytes(range(18))
    labels = bytes([0, 0, 8, 1]) + struct.pack(">I", 4) + bytes([7, 2, 1, 0])
    floats = bytes([0, 0, 0x0D, 2]) + struct.pack(">II", 2, 2) + struct.pack(">4f", 1.0, -2.0, 0.5, 3.0)
    ints = bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 3) + struct.pack(">3i", -1, 0, 70000)
    for name, b in {"images": images, "labels": labels, "floats": floats, "ints": ints}.items():
        (out / f"{name}.idx").write_bytes(b)
    (out / "images.idx.gz").write_bytes(gzip.compress(images, mtime=0))


if __name__ == "__main__":
    npy_corpus()
    main()
    pt_corpus()
    npz_corpus()
    idx_corpus()
