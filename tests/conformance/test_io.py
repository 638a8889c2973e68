"""safetensors: files written by the safetensors library load in ctorch with identical
tensors and metadata; files ctorch writes load in safetensors/torch identically; every
dtype; non-contiguous inputs; malformed and truncated files give errors."""
import ctypes
import os

import pytest
import torch
from safetensors.torch import load_file, save_file

import ctorch
from harness import case

P = ctypes.c_void_p
_raw = ctorch._raw
load = _raw("ct_safetensors_load", P, ctypes.c_char_p)
save = _raw("ct_safetensors_save", ctypes.c_int, P, ctypes.c_char_p)
load_buf = _raw("ct_safetensors_load_buffer", P, ctypes.c_char_p, ctypes.c_size_t)

DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.int16,
          torch.int8, torch.uint8, torch.bool]


def sample():
    g = torch.Generator().manual_seed(0)
    out = {}
    for i, dt in enumerate(DTYPES):
        t = torch.randn(3, 4, generator=g) * 50
        out[f"t{i}.{str(dt)[6:]}"] = t.to(dt)
    out["scalar"] = torch.tensor(3.5)
    out["empty"] = torch.zeros(0, 5)
    return out


def test_torch_written_file_loads_identically(tmp_path):
    tensors = sample()
    f = tmp_path / "a.safetensors"
    save_file(tensors, str(f), metadata={"format": "pt", "epoch": "7"})
    with case("safetensors load"):
        ctorch.lib.ct_clear_error()
        d = ctorch.Dict(load(str(f).encode()))
        assert d.meta() == {"format": "pt", "epoch": "7"}
        got = d.torch()
        assert sorted(got) == sorted(tensors)
        for k, v in tensors.items():
            assert got[k].dtype == v.dtype and torch.equal(got[k], v), k


def test_ctorch_written_file_loads_in_safetensors(tmp_path):
    tensors = sample()
    tensors["noncontig"] = torch.randn(4, 6)[:, ::2].t()
    d = ctorch.Dict.from_torch(tensors, meta={"who": "ctorch", "quote\"s": "a\\b"})
    f = tmp_path / "b.safetensors"
    with case("safetensors save"):
        assert save(d._p, str(f).encode()) == 0, ctorch.lib.ct_last_error()
        back = load_file(str(f))
        for k, v in tensors.items():
            assert back[k].dtype == v.dtype and torch.equal(back[k], v), k
        from safetensors import safe_open
        with safe_open(str(f), "pt") as sf:
            assert sf.metadata() == {"who": "ctorch", "quote\"s": "a\\b"}
        assert not [p for p in os.listdir(tmp_path) if ".tmp." in p]  # atomic save left nothing behind


def test_complex_is_refused(tmp_path):
    d = ctorch.Dict.from_torch({"z": torch.randn(2, dtype=torch.complex64)})
    with case("safetensors save"):
        ctorch.lib.ct_clear_error()
        assert save(d._p, str(tmp_path / "c.safetensors").encode()) < 0
        assert "does not have" in ctorch.lib.ct_last_error()


def test_malformed_and_truncated_files_error(tmp_path):
    f = tmp_path / "m.safetensors"
    save_file({"a": torch.randn(4, 3), "b": torch.arange(5)}, str(f))
    good = f.read_bytes()
    bad = [good[:k] for k in range(0, len(good), 7)]  # every truncation
    bad += [good[:8] + b'{"a":{"dtype":"F32","shape":[4,3],"data_offsets":[0,40]}}' + good[8 + 0:][:0],
            (10 ** 9).to_bytes(8, "little") + good[8:],  # header longer than the file
            good[:8] + good[8:].replace(b'"F32"', b'"F99"'),
            good[:8] + good[8:].replace(b'[4,3]', b'[4,4]'),
            good[:8] + good[8:].replace(b'"a"', b'"b"'),  # duplicate names
            good + b"extra"]  # bytes no tensor describes
    with case("safetensors load"):
        for i, b in enumerate(bad):
            ctorch.lib.ct_clear_error()
            p = load_buf(b, len(b))
            if p:  # a truncation at the very end is not possible; anything that loads must be complete
                ctorch.Dict(p)
                assert len(b) == len(good), i
            else:
                assert ctorch.lib.ct_last_status() in (-11, -6), (i, ctorch.lib.ct_last_error())


# ---- .npy ----
npy_load = _raw("ct_npy_load", P, ctypes.c_char_p)
npy_save = _raw("ct_npy_save", ctypes.c_int, P, ctypes.c_char_p)
npy_load_buf = _raw("ct_npy_load_buffer", P, ctypes.c_char_p, ctypes.c_size_t)


@pytest.mark.parametrize("dtype", ["bool", "uint8", "int8", "<i2", ">i4", "<i8", "<f2", ">f4", "<f8", "<c8", ">c16"])
@pytest.mark.parametrize("order", ["C", "F"])
def test_numpy_written_npy_loads(tmp_path, dtype, order):
    import numpy as np
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((3, 4, 2)) * 50).astype(dtype, order=order)
    if a.dtype.kind == "c":
        a = a + 1j * a[::-1]
    f = tmp_path / "a.npy"
    np.save(f, a)
    with case("npy load"):
        ctorch.lib.ct_clear_error()
        t = ctorch.Tensor(npy_load(str(f).encode())).torch()
        assert np.array_equal(t.numpy(), a.astype(a.dtype.newbyteorder("=")))


@pytest.mark.parametrize("shape", [(), (5,), (3, 4), (2, 0, 3)])
def test_ctorch_written_npy_loads_in_numpy(tmp_path, shape):
    import numpy as np
    for dt in (torch.float32, torch.int64, torch.bool, torch.complex64, torch.float16):
        x = (torch.randn(shape) * 10).to(dt)
        f = tmp_path / "b.npy"
        with case("npy save"):
            assert npy_save(ctorch.from_torch(x).ptr, str(f).encode()) == 0, ctorch.lib.ct_last_error()
            back = np.load(f)
            assert back.shape == tuple(shape) and np.array_equal(back, x.numpy())
    with case("npy save"):
        ctorch.lib.ct_clear_error()
        assert npy_save(ctorch.from_torch(torch.zeros(2, dtype=torch.bfloat16)).ptr, str(f).encode()) < 0


def test_malformed_npy_errors(tmp_path):
    import io
    import numpy as np
    buf = io.BytesIO()
    np.save(buf, np.arange(12, dtype=np.float32).reshape(3, 4))
    good = buf.getvalue()
    bad = [good[:k] for k in range(0, len(good) - 1, 5)]
    bad += [good.replace(b"<f4", b"<f9"), good.replace(b"(3, 4)", b"(3, 9)"), good.replace(b"False", b"Maybe"),
            b"\x93NUMPY\x09\x00" + good[8:]]
    with case("npy load"):
        for b in bad:
            ctorch.lib.ct_clear_error()
            assert not npy_load_buf(b, len(b)), b[:60]
            assert ctorch.lib.ct_last_status() == -11
