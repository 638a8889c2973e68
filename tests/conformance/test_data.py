"""Datasets and data loaders against torch.utils.data: the same shuffled batches for the
same generator seed (RandomSampler's randperm), drop_last, random_split's subsets;
IDX files (plain and gzip) read as numpy reads them, truncated files refused."""
import ctypes
import gzip
import math
import struct

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset, random_split

import ctorch
from harness import case

P = ctypes.c_void_p
_raw = ctorch._raw
NUM_DTYPES = 12  # CT_NUM_DTYPES: no dtype override


class LoaderOpts(ctypes.Structure):
    _fields_ = [("batch_size", ctypes.c_int64), ("shuffle", ctypes.c_bool), ("drop_last", ctypes.c_bool),
                ("generator", P), ("num_workers", ctypes.c_int), ("prefetch_factor", ctypes.c_int),
                ("collate", P), ("collate_user", P), ("collate_outputs", ctypes.c_int)]


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


@pytest.mark.parametrize("workers", [0, 1, 3])
@pytest.mark.parametrize("bs,shuffle,drop_last", [(4, False, False), (4, True, False), (3, True, True), (32, True, False)])
def test_loader_matches_torch(bs, shuffle, drop_last, workers):
    x, y = torch.randn(10, 3), torch.arange(10)
    tl = DataLoader(TensorDataset(x, y), batch_size=bs, shuffle=shuffle, drop_last=drop_last,
                    generator=torch.Generator().manual_seed(5))
    g = gen_new(5)
    ds = ct_dataset([ctorch.from_torch(x), ctorch.from_torch(y)])
    lo = _raw("ct_data_loader_new", P, P, ctypes.POINTER(LoaderOpts))(
        ds, ctypes.byref(LoaderOpts(bs, shuffle, drop_last, g, workers, 1 if workers == 3 else 0)))
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


COLLATE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int64, ctypes.c_int, ctypes.POINTER(P), ctypes.POINTER(P), P)


@pytest.mark.parametrize("workers", [0, 2])
def test_custom_collate(workers):
    """A collate that returns (sum of x over the batch, max label, batch size as a
    tensor): 3 outputs from 2 fields; and one that fails, whose error surfaces."""
    x, y = torch.randn(11, 3, dtype=torch.float64), torch.arange(11)
    ds = ct_dataset([ctorch.from_torch(x), ctorch.from_torch(y)])
    sum0 = _raw("ct_sum_dim", P, P, ctypes.c_int, ctypes.POINTER(ctypes.c_int64), ctypes.c_bool, ctypes.c_int)
    stk = _raw("ct_stack", P, ctypes.c_int, ctypes.POINTER(P), ctypes.c_int)
    amax = _raw("ct_amax", P, P, ctypes.c_int, ctypes.POINTER(ctypes.c_int64), ctypes.c_bool)
    scal = _raw("ct_scalar_tensor", P, ctypes.c_double, ctypes.c_int)

    def collate(n, nf, items, out, user):
        xs = (P * n)(*[items[j * nf] for j in range(n)])
        ys = (P * n)(*[items[j * nf + 1] for j in range(n)])
        out[0] = sum0(stk(n, xs, 0), 1, (ctypes.c_int64 * 1)(0), False, NUM_DTYPES)
        out[1] = amax(stk(n, ys, 0), 0, None, False)
        out[2] = scal(float(n), ctorch.to_ct_dtype(torch.int64))
        return 0
    cb = COLLATE(collate)
    opts = LoaderOpts(4, False, False, None, workers, 0, ctypes.cast(cb, P), None, 3)
    lo = _raw("ct_data_loader_new", P, P, ctypes.POINTER(LoaderOpts))(ds, ctypes.byref(opts))
    assert lo, ctorch.lib.ct_last_error()
    got = batches(lo, 3)
    assert len(got) == 3
    for k, (sx, my, n) in enumerate(got):
        sl = slice(4 * k, min(4 * k + 4, 11))
        assert torch.allclose(sx, x[sl].sum(0)) and my.item() == y[sl].max().item() and n.item() == len(y[sl])
    _raw("ct_data_loader_free", None, P)(lo)

    set_error = _raw("ct_set_error", ctypes.c_int, ctypes.c_int, ctypes.c_char_p)

    def failing(n, nf, items, out, user):
        return set_error(-1, b"collate refused the batch")
    fb = COLLATE(failing)
    opts = LoaderOpts(4, False, False, None, workers, 0, ctypes.cast(fb, P), None, 0)
    lo = _raw("ct_data_loader_new", P, P, ctypes.POINTER(LoaderOpts))(ds, ctypes.byref(opts))
    arr = (P * 2)()
    assert _raw("ct_data_loader_next", ctypes.c_int, P, ctypes.POINTER(P))(lo, arr) == -1
    assert "collate refused the batch" in ctorch.lib.ct_last_error()
    _raw("ct_data_loader_free", None, P)(lo)
    _raw("ct_data_dataset_free", None, P)(ds)


def test_loader_errors():
    x = torch.randn(4, 2)
    ds = ct_dataset([ctorch.from_torch(x)])
    new = _raw("ct_data_loader_new", P, P, ctypes.POINTER(LoaderOpts))
    assert not new(ds, ctypes.byref(LoaderOpts(-2)))
    assert "batch_size should be a positive integer value" in ctorch.lib.ct_last_error()
    assert not new(ds, ctypes.byref(LoaderOpts(2, False, False, None, -1)))
    assert "num_workers option should be non-negative" in ctorch.lib.ct_last_error()
    cb = COLLATE(lambda *a: 0)
    assert not new(ds, ctypes.byref(LoaderOpts(2, False, False, None, 0, 0, ctypes.cast(cb, P), None, 17)))
    assert "at most 16 batch fields" in ctorch.lib.ct_last_error()
    _raw("ct_data_dataset_free", None, P)(ds)


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


class CsvOpts(ctypes.Structure):
    _fields_ = [("delimiter", ctypes.c_char), ("header", ctypes.c_bool), ("dtype", ctypes.c_int),
                ("skip_rows", ctypes.c_int64), ("comment", ctypes.c_char)]


read_csv = _raw("ct_data_read_csv", P, ctypes.c_char_p, ctypes.POINTER(CsvOpts), ctypes.POINTER(ctypes.POINTER(ctypes.c_char_p)),
                ctypes.POINTER(ctypes.c_int64))
read_csv_buf = _raw("ct_data_read_csv_buffer", P, ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(CsvOpts),
                    ctypes.POINTER(ctypes.POINTER(ctypes.c_char_p)), ctypes.POINTER(ctypes.c_int64))
names_free = _raw("ct_data_csv_names_free", None, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int64)


def csv_opts(delimiter=b",", header=False, dtype=torch.float32, skip_rows=0, comment=b"\0"):
    return CsvOpts(delimiter, header, ctorch.to_ct_dtype(dtype), skip_rows, comment)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("compress", [False, True])
def test_read_csv_matches_numpy(tmp_path, dtype, compress):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((37, 5))
    a[3, 2] = 1e300 if dtype == torch.float64 else 3.5e38
    path = tmp_path / ("t.csv.gz" if compress else "t.csv")
    text = "a,b,c,d,e\n" + "\n".join(",".join(repr(float(v)) for v in row) for row in a) + "\n"
    (gzip.open if compress else open)(path, "wt").write(text)
    names, n = ctypes.POINTER(ctypes.c_char_p)(), ctypes.c_int64()
    t = read_csv(str(path).encode(), ctypes.byref(csv_opts(header=True, dtype=dtype)), ctypes.byref(names),
                 ctypes.byref(n))
    assert t, ctorch.lib.ct_last_error()
    got = ctorch.Tensor(t).torch()
    want = torch.from_numpy(np.loadtxt(path, delimiter=",", skiprows=1)).to(dtype)
    with case("read_csv"):
        assert got.dtype == dtype and torch.equal(got, want)
        assert [names[i].decode() for i in range(n.value)] == list("abcde")
    names_free(names, n)


def test_read_csv_forms():
    def rd(text, **kw):
        ctorch.lib.ct_clear_error()
        t = read_csv_buf(text, len(text), ctypes.byref(csv_opts(**kw)), None, None)
        return ctorch.Tensor(t).torch() if t else None
    # ; delimiter, quotes, spaces, CRLF, blank lines, skipped rows, comments, empty = NaN
    t = rd(b"junk line\n# c\n 1 ;\"2.5\"; 3\r\n\n4;;-6e-1\n", delimiter=b";", skip_rows=1, comment=b"#")
    assert t.shape == (2, 3) and t[0].tolist() == [1, 2.5, 3] and math.isnan(t[1, 1]) and t[1, 2].item() == pytest.approx(-0.6)
    # integers exactly, beyond 2^53
    t = rd(b"9007199254740993,-5\n1,2\n", dtype=torch.int64)
    assert t.dtype == torch.int64 and t[0, 0].item() == 9007199254740993
    # empty input and header only
    assert rd(b"").shape == (0, 0)
    assert rd(b"x,y\n", header=True).shape == (0, 2)
    # nan / inf as numpy writes them
    t = rd(b"nan,inf,-inf\n")
    assert math.isnan(t[0, 0]) and t[0, 1] == math.inf and t[0, 2] == -math.inf
    # errors: ragged rows, a word, an empty int, int32 overflow, unbalanced quotes
    assert rd(b"1,2\n3\n") is None and "line 2 has 1 fields, expected 2" in ctorch.lib.ct_last_error()
    assert rd(b"1,2\n3,abc\n") is None and "line 2, column 2: 'abc' is not a number" in ctorch.lib.ct_last_error()
    assert rd(b"1,,3\n", dtype=torch.int64) is None and "is not an integer" in ctorch.lib.ct_last_error()
    assert rd(b"3000000000\n", dtype=torch.int32) is None
    assert rd(b"\"1,2\n") is None
    assert rd(b"1\n", dtype=torch.bool) is None and "dtype must be" in ctorch.lib.ct_last_error()
    assert not read_csv(b"no/such/file.csv", None, None, None) and "cannot open" in ctorch.lib.ct_last_error()
