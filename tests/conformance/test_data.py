"""Datasets and data loaders against torch.utils.data: the same shuffled batches for the
same generator seed (RandomSampler's randperm), drop_last, random_split's subsets;
IDX files (plain and gzip) read as numpy reads them, truncated files refused."""
import ctypes
import gzip
import struct

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset, random_split

import ctorch
from harness import case

P = ctypes.c_void_p
_raw = ctorch._raw


class LoaderOpts(ctypes.Structure):
    _fields_ = [("batch_size", ctypes.c_int64), ("shuffle", ctypes.c_bool), ("drop_last", ctypes.c_bool),
                ("generator", P)]


gen_new = _raw("ct_generator_new", P, ctypes.c_uint64)
gen_free = _raw("ct_generator_free", None, P)


def ct_dataset(tensors):
    arr = (P * len(tensors))(*[t.ptr for t in tensors])
    ctorch.lib.ct_clear_error()
    d = _raw("ct_data_tensor_dataset_new", P, ctypes.c_int, ctypes.POINTER(P))(len(tensors), arr)
    assert d, ctorch.lib.ct_last_error()
    return d


def batches(loader, nf):
    nxt = _raw("ct_data_loader_next", ctypes.c_int, P, ctypes.POINTER(P))
    out = []
    while True:
        arr = (P * nf)()
        rc = nxt(loader, arr)
        assert rc >= 0, ctorch.lib.ct_last_error()
        if rc == 0:
            return out
        out.append([ctorch.Tensor(arr[k]).torch() for k in range(nf)])


@pytest.mark.parametrize("bs,shuffle,drop_last", [(4, False, False), (4, True, False), (3, True, True), (32, True, False)])
def test_loader_matches_torch(bs, shuffle, drop_last):
    x, y = torch.randn(10, 3), torch.arange(10)
    tl = DataLoader(TensorDataset(x, y), batch_size=bs, shuffle=shuffle, drop_last=drop_last,
                    generator=torch.Generator().manual_seed(5))
    g = gen_new(5)
    ds = ct_dataset([ctorch.from_torch(x), ctorch.from_torch(y)])
    lo = _raw("ct_data_loader_new", P, P, ctypes.POINTER(LoaderOpts))(ds, ctypes.byref(LoaderOpts(bs, shuffle, drop_last, g)))
    with case("DataLoader"):
        assert _raw("ct_data_loader_len", ctypes.c_int64, P)(lo) == len(tl)
        for epoch in range(2):  # a new epoch reshuffles like torch's
            want = [[b[0], b[1]] for b in tl]
            got = batches(lo, 2)
            assert len(got) == len(want)
            for (gx, gy), (wx, wy) in zip(got, want):
                assert torch.equal(gx, wx) and torch.equal(gy, wy)
    _raw("ct_data_loader_free", None, P)(lo)
    _raw("ct_data_dataset_free", None, P)(ds)
    gen_free(g)


def test_random_split_matches_torch():
    x = torch.arange(20).float()
    parts = random_split(TensorDataset(x), [7, 5, 8], generator=torch.Generator().manual_seed(3))
    ds = ct_dataset([ctorch.from_torch(x)])
    g = gen_new(3)
    out = (P * 3)()
    assert _raw("ct_data_random_split", ctypes.c_int, P, ctypes.c_int, ctypes.POINTER(ctypes.c_int64), P,
                ctypes.POINTER(P))(ds, 3, (ctypes.c_int64 * 3)(7, 5, 8), g, out) == 0
    get = _raw("ct_data_dataset_get", ctypes.c_int, P, ctypes.c_int64, ctypes.POINTER(P))
    with case("random_split"):
        for k, part in enumerate(parts):
            assert _raw("ct_data_dataset_len", ctypes.c_int64, P)(out[k]) == len(part)
            for i in range(len(part)):
                arr = (P * 1)()
                assert get(out[k], i, arr) == 0
                assert ctorch.Tensor(arr[0]).torch().item() == part[i][0].item()
    for k in range(3):
        _raw("ct_data_dataset_free", None, P)(out[k])
    _raw("ct_data_dataset_free", None, P)(ds)
    gen_free(g)


def write_idx(path, arr, code, compress):
    data = bytes([0, 0, code, arr.ndim]) + b"".join(struct.pack(">I", s) for s in arr.shape) + \
        arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    (gzip.open if compress else open)(path, "wb").write(data)
    return data


@pytest.mark.parametrize("dtype,code", [(np.uint8, 8), (np.int16, 0x0B), (np.int32, 0x0C), (np.float32, 0x0D),
                                        (np.float64, 0x0E)])
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx(tmp_path, dtype, code, compress):
    arr = (np.random.rand(3, 4, 5) * 100).astype(dtype)
    p = tmp_path / "a.idx"
    data = write_idx(str(p), arr, code, compress)
    rd = _raw("ct_data_read_idx", P, ctypes.c_char_p)
    with case("read_idx"):
        t = ctorch.Tensor(rd(str(p).encode())).torch()
        assert t.shape == arr.shape and np.array_equal(t.numpy(), arr)
        p.write_bytes(data[:-3])  # truncated
        ctorch.lib.ct_clear_error()
        assert not rd(str(p).encode()) and "declares" in ctorch.lib.ct_last_error()


def test_read_real_fashion_mnist():
    import os
    path = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"
    if not os.path.exists(path):
        pytest.skip("dataset-fashion-mnist is not installed")
    rd = _raw("ct_data_read_idx", P, ctypes.c_char_p)
    with case("read_idx"):
        t = ctorch.Tensor(rd(path.encode())).torch()
        raw = gzip.open(path).read()
        assert t.shape == (10000,) and bytes(t.numpy()) == raw[8:]
