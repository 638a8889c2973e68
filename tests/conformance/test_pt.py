"""torch.save (.pt) and NumPy .npz files both ways.

torch.save'd state dicts (a small CNN, views, non-contiguous tensors, shared storages,
every dtype, nested dicts, an optimizer state dict) load into ctorch with identical
tensors; files ctorch writes load with torch.load(weights_only=True) identically
(views keep sharing one storage) and into a torch model with load_state_dict, giving
identical outputs; np.savez / np.savez_compressed files load and ctorch's .npz files
load in NumPy; hostile files (forbidden globals and opcodes, truncations, bad offsets,
huge sizes, CRC errors) give CT_ERR_FORMAT with a message naming the problem."""
import ctypes
import io
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest
import torch

import ctorch
from harness import case

P = ctypes.c_void_p
_raw = ctorch._raw
load_pt = _raw("ct_io_load_pt", P, ctypes.c_char_p)
load_pt_buf = _raw("ct_io_load_pt_buffer", P, ctypes.c_char_p, ctypes.c_size_t)
save_pt = _raw("ct_io_save_pt", ctypes.c_int, ctypes.c_char_p, P)
load_npz = _raw("ct_io_load_npz", P, ctypes.c_char_p)
load_npz_buf = _raw("ct_io_load_npz_buffer", P, ctypes.c_char_p, ctypes.c_size_t)
save_npz = _raw("ct_io_save_npz", ctypes.c_int, ctypes.c_char_p, P, ctypes.c_bool)
as_strided = _raw("ct_as_strided", P, P, ctypes.c_int, ctypes.POINTER(ctypes.c_int64),
                  ctypes.POINTER(ctypes.c_int64), ctypes.c_int64)
data_ptr = _raw("ct_data_ptr", ctypes.c_void_p, P)
storage_offset = _raw("ct_storage_offset", ctypes.c_int64, P)
FORMAT = -11

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int8, torch.int16, torch.int32,
          torch.int64, torch.uint8, torch.bool, torch.complex64, torch.complex128]


class CNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4),
                                            torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Conv2d(4, 6, 3))
        self.head = torch.nn.Linear(6, 3)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))


def trained_cnn():
    torch.manual_seed(0)
    m = CNN()
    m(torch.randn(4, 1, 6, 6))  # BatchNorm running stats move
    m.eval()
    return m


def ct_load(path):
    ctorch.lib.ct_clear_error()
    return ctorch.Dict(load_pt(str(path).encode()))


def same(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)


def sample(dt, shape=(3, 4), seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 20
    if dt.is_complex:
        return torch.complex(x, -x).to(dt)
    return x.to(dt)


# ---- torch.save -> ctorch ----
def test_cnn_state_dict_loads_identically(tmp_path):
    sd = trained_cnn().state_dict()
    torch.save(sd, tmp_path / "cnn.pt")
    with case("load_pt"):
        d = ct_load(tmp_path / "cnn.pt")
        assert d.keys() == list(sd)  # order kept, _metadata ignored
        got = d.torch()
        for k, v in sd.items():
            assert same(got[k], v), k


@pytest.mark.parametrize("dt", DTYPES, ids=str)
def test_every_dtype_loads(tmp_path, dt):
    x = sample(dt)
    torch.save({"x": x, "t": x.t(), "s": x[0, 1].clone(), "e": x[:0]}, tmp_path / "d.pt")
    with case("load_pt"):
        got = ct_load(tmp_path / "d.pt").torch()
        assert same(got["x"], x) and same(got["t"], x.t()) and same(got["s"], x[0, 1]) and same(got["e"], x[:0])


def test_views_and_shared_storage_load(tmp_path):
    base = torch.arange(24.0)
    sd = {"a": base[3:9], "b": base.view(4, 6).t(), "c": base.view(4, 6)[1:, ::2], "d": base.view(2, 3, 4).permute(2, 0, 1),
          "x": torch.ones(1).expand(5), "base": base}
    torch.save(sd, tmp_path / "v.pt")
    with case("load_pt"):
        d = ct_load(tmp_path / "v.pt")
        got = d.torch()
        for k, v in sd.items():
            assert same(got[k], v), k
        # one storage in ctorch too: the views' data start at base + offset
        b0 = data_ptr(d["base"]._p)
        for k in "abcd":
            t = d[k]
            assert data_ptr(t._p) - 4 * storage_offset(t._p) == b0, k


def test_nested_and_optimizer_state_dicts(tmp_path):
    m = trained_cnn()
    m.train()
    opt = torch.optim.Adam(m.parameters(), lr=0.01)
    m(torch.randn(4, 1, 6, 6)).sum().backward()
    opt.step()
    ckpt = {"model": m.state_dict(), "optimizer": opt.state_dict(), "epoch": 7, "loss": 0.25, "tag": "run1",
            "none": None, "flags": [True, False]}
    torch.save(ckpt, tmp_path / "ckpt.pt")
    with case("load_pt"):
        d = ct_load(tmp_path / "ckpt.pt")
        got = d.torch()
        for k, v in m.state_dict().items():
            assert same(got["model." + k], v), k
        osd = opt.state_dict()
        for i, st in osd["state"].items():
            for name, v in st.items():
                assert same(got[f"optimizer.state.{i}.{name}"], v), (i, name)
        g = osd["param_groups"][0]
        assert got["optimizer.param_groups.0.lr"].item() == g["lr"]
        assert got["optimizer.param_groups.0.lr"].dtype == torch.float64
        assert got["optimizer.param_groups.0.betas"].tolist() == list(g["betas"])
        assert got["optimizer.param_groups.0.params"].tolist() == g["params"]
        assert got["optimizer.param_groups.0.amsgrad"].dtype == torch.bool
        assert got["epoch"].item() == 7 and got["epoch"].dtype == torch.int64 and got["loss"].item() == 0.25
        assert got["flags"].tolist() == [True, False]
        assert d.meta() == {"tag": "run1"} and "none" not in got


def test_parameters_and_protocol_4(tmp_path):
    p = torch.nn.Parameter(torch.randn(3, 2))
    torch.save({"p": p, "q": torch.arange(4)}, tmp_path / "p4.pt", pickle_protocol=4)
    with case("load_pt"):
        got = ct_load(tmp_path / "p4.pt").torch()
        assert same(got["p"], p.detach()) and same(got["q"], torch.arange(4))


def test_big_endian_file_loads(tmp_path):
    x = {"f": sample(torch.float32), "z": sample(torch.complex128), "i": torch.arange(-3, 3, dtype=torch.int16)}
    torch.save(x, tmp_path / "le.pt")
    # rewrite the archive as a big-endian machine would have written it
    src = zipfile.ZipFile(tmp_path / "le.pt")
    with zipfile.ZipFile(tmp_path / "be.pt", "w") as dst:
        order = {}
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("byteorder"):
                data = b"big"
            elif "/data/" in info.filename:
                key = info.filename.rsplit("/", 1)[1]
                order[key] = data
                continue
            dst.writestr(info.filename.replace("le/", "be/"), data)
        # storage keys follow the dict order: 0 -> f (4-byte), 1 -> z (complex: 8-byte parts), 2 -> i (2-byte)
        for key, width in (("0", 4), ("1", 8), ("2", 2)):
            a = np.frombuffer(order[key], dtype=f"<u{width}").astype(f">u{width}").tobytes()
            dst.writestr(f"be/data/{key}", a)
    with case("load_pt"):
        got = ct_load(tmp_path / "be.pt").torch()
        for k, v in x.items():
            assert same(got[k], v), k


# ---- ctorch -> torch.load ----
def test_ctorch_saved_state_dict_loads_in_torch_model(tmp_path):
    m = trained_cnn()
    d = ctorch.Dict.from_torch(m.state_dict())
    f = tmp_path / "out.pt"
    with case("save_pt"):
        assert save_pt(str(f).encode(), d._p) == 0, ctorch.lib.ct_last_error()
        back = torch.load(f, weights_only=True)
        assert list(back) == list(m.state_dict())
        for k, v in m.state_dict().items():
            assert same(back[k], v), k
        m2 = CNN()
        m2.load_state_dict(back)
        m2.eval()
        x = torch.randn(5, 1, 6, 6)
        assert torch.equal(m2(x), m(x))
        assert not [p for p in os.listdir(tmp_path) if ".tmp." in p]  # atomic save left nothing behind
        with zipfile.ZipFile(f) as z:  # torch's layout: 64-byte aligned storages, a ZIP64 end record
            for info in z.infolist():
                if "/data/" in info.filename:
                    off = info.header_offset + 30 + len(info.filename) + len(info.extra)
                    raw = f.read_bytes()
                    n = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
                    assert (info.header_offset + 30 + n[0] + n[1]) % 64 == 0, info.filename
        assert b"PK\x06\x06" in f.read_bytes()
        mm = torch.load(f, weights_only=True, mmap=True)  # needs torch's 64-byte alignment
        for k, v in m.state_dict().items():
            assert same(mm[k], v), k


@pytest.mark.parametrize("dt", DTYPES, ids=str)
def test_every_dtype_saves(tmp_path, dt):
    x = sample(dt, (2, 3, 4))
    tensors = {"x": x, "scalar": x[0, 0, 0].clone(), "empty": x[:0], "nc": x.transpose(0, 2)}
    d = ctorch.Dict.from_torch(tensors)
    with case("save_pt"):
        assert save_pt(str(tmp_path / "o.pt").encode(), d._p) == 0, ctorch.lib.ct_last_error()
        back = torch.load(tmp_path / "o.pt", weights_only=True)
        for k, v in tensors.items():
            assert same(back[k], v), k
        again = ct_load(tmp_path / "o.pt").torch()  # and ctorch reads its own file
        for k, v in tensors.items():
            assert same(again[k], v), k


def test_ctorch_views_save_as_shared_storage(tmp_path):
    base = ctorch.from_torch(torch.arange(12.0))

    def view(sizes, strides, off):
        n = len(sizes)
        return ctorch.Tensor(as_strided(base._p, n, (ctypes.c_int64 * n)(*sizes), (ctypes.c_int64 * n)(*strides), off))

    a, b = view([3, 4], [1, 3], 0), view([2, 2], [4, 1], 5)
    d = ctorch.Dict()
    setf = _raw("ct_dict_set", ctypes.c_int, P, ctypes.c_char_p, P)
    for k, t in (("base", base), ("a", a), ("b", b)):
        assert setf(d._p, k.encode(), t._p) == 0
    with case("save_pt"):
        assert save_pt(str(tmp_path / "s.pt").encode(), d._p) == 0, ctorch.lib.ct_last_error()
        back = torch.load(tmp_path / "s.pt", weights_only=True)
        ref = torch.arange(12.0)
        assert same(back["a"], ref.as_strided((3, 4), (1, 3), 0)) and same(back["b"], ref.as_strided((2, 2), (4, 1), 5))
        assert back["a"].untyped_storage().data_ptr() == back["base"].untyped_storage().data_ptr()
        assert back["b"].stride() == (4, 1) and back["b"].storage_offset() == 5
        with zipfile.ZipFile(tmp_path / "s.pt") as z:
            assert [n for n in z.namelist() if "/data/" in n] == ["archive/data/0"]


def test_save_errors(tmp_path):
    d = ctorch.Dict.from_torch({"a": torch.ones(2)})
    with case("save_pt"):
        ctorch.lib.ct_clear_error()
        assert save_pt(str(tmp_path / "no" / "such" / "dir.pt").encode(), d._p) == -10
        assert "cannot" in ctorch.lib.ct_last_error()


# ---- .npz ----
def npz_arrays():
    rng = np.random.default_rng(0)
    return {"f32": rng.standard_normal((3, 4)).astype("<f4"), "f64be": rng.standard_normal(5).astype(">f8"),
            "i64": np.arange(6).reshape(2, 3), "u8": np.arange(7, dtype=np.uint8), "b": np.array([True, False]),
            "c64": (rng.standard_normal(3) + 1j).astype(np.complex64), "fortran": np.asfortranarray(np.ones((2, 3))),
            "scalar": np.float64(2.5), "empty": np.zeros((0, 3), np.int16), "f16": np.arange(4, dtype=np.float16)}


@pytest.mark.parametrize("compressed", [False, True])
def test_numpy_npz_loads(tmp_path, compressed):
    arrays = npz_arrays()
    f = tmp_path / "a.npz"
    (np.savez_compressed if compressed else np.savez)(f, **arrays)
    with case("load_npz"):
        ctorch.lib.ct_clear_error()
        d = ctorch.Dict(load_npz(str(f).encode()))
        assert d.keys() == list(arrays)
        got = d.torch()
        for k, a in arrays.items():
            a = np.asarray(a)
            assert got[k].numpy().shape == a.shape and np.array_equal(got[k].numpy(), a), k
            assert got[k].numpy().dtype == a.dtype.newbyteorder("="), k


@pytest.mark.parametrize("compressed", [False, True])
def test_ctorch_npz_loads_in_numpy(tmp_path, compressed):
    tensors = {"x": sample(torch.float32), "i": torch.arange(5), "z": sample(torch.complex128, (2,)),
               "nc": sample(torch.float64).t(), "s": torch.tensor(True), "e": torch.zeros(0, 2)}
    d = ctorch.Dict.from_torch(tensors)
    f = tmp_path / "c.npz"
    with case("save_npz"):
        assert save_npz(str(f).encode(), d._p, compressed) == 0, ctorch.lib.ct_last_error()
        with np.load(f) as z:
            assert list(z.keys()) == list(tensors)
            for k, v in tensors.items():
                assert np.array_equal(z[k], v.numpy()) and z[k].dtype == v.numpy().dtype, k
        with zipfile.ZipFile(f) as z:
            assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED}
        ctorch.lib.ct_clear_error()
        bf = ctorch.Dict.from_torch({"b": torch.ones(2, dtype=torch.bfloat16)})
        assert save_npz(str(f).encode(), bf._p, compressed) == -3  # NumPy has no bfloat16


def test_bad_npz_errors(tmp_path):
    buf = io.BytesIO()
    np.savez_compressed(buf, a=np.arange(100.0), b=np.ones(3))
    good = buf.getvalue()
    other = io.BytesIO()
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("notes.txt", "hi")
    bad = [good[:k] for k in range(0, len(good), 3)] + [other.getvalue()]
    i = good.index(b"a.npy") + 40  # inside a's deflate stream: CRC or inflate error
    bad.append(good[:i] + bytes([good[i] ^ 0xFF]) + good[i + 1:])
    with case("load_npz"):
        for k, b in enumerate(bad):
            ctorch.lib.ct_clear_error()
            p = load_npz_buf(b, len(b))
            assert not p and ctorch.lib.ct_last_status() == FORMAT, (k, len(b), ctorch.lib.ct_last_error())
        assert "not a .npy file" in (load_npz_buf(bad[-2], len(bad[-2])) or ctorch.lib.ct_last_error())


# ---- hostile .pt files ----
def rezip(good_path, replace):
    """The archive at good_path with some records replaced (name -> bytes)."""
    out = io.BytesIO()
    with zipfile.ZipFile(good_path) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, replace.get(info.filename.split("/", 1)[1], src.read(info)))
    return out.getvalue()


def pt_error(b):
    ctorch.lib.ct_clear_error()
    p = load_pt_buf(b, len(b))
    if p:
        ctorch.Dict(p)
        return None
    assert ctorch.lib.ct_last_status() == FORMAT, ctorch.lib.ct_last_error()
    return ctorch.lib.ct_last_error()


class Evil:
    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return self.fn, (self.arg,)


@pytest.fixture
def good_pt(tmp_path):
    f = tmp_path / "g.pt"
    torch.save({"w": torch.arange(6.0).view(2, 3), "b": torch.ones(2)}, f)
    return f


def test_forbidden_globals_are_refused(good_pt):
    import builtins
    import subprocess
    evil = {"os.system": pickle.dumps({"w": Evil(os.system, "echo pwned")}, protocol=2),
            "builtins.eval": pickle.dumps(Evil(builtins.eval, "1+1"), protocol=2, fix_imports=False),
            "subprocess.call": pickle.dumps(Evil(subprocess.call, "true"), protocol=2, fix_imports=False),
            "builtins.getattr": b"\x80\x02cbuiltins\ngetattr\nq\x00.",
            "torch._utils._rebuild_device_tensor_from_numpy": pickle.dumps(Evil(torch._utils._rebuild_device_tensor_from_numpy, 1), protocol=2),
            "os.system ": pickle.dumps(Evil(os.system, "true"), protocol=4)}  # STACK_GLOBAL
    with case("load_pt"):
        for name, pkl in evil.items():
            msg = pt_error(rezip(good_pt, {"data.pkl": pkl}))
            want = name.strip().replace("posix", "os")
            assert msg and "not allowed" in msg, (name, msg)
            assert want in msg.replace("posix.", "os."), (name, msg)


def test_forbidden_opcodes_are_refused(good_pt):
    cases = {"INST": b"(ios\nsystem\nS'x'\n.", "NEWOBJ": b"\x80\x02ccollections\nOrderedDict\n)\x81.",
             "STRING": b"S'abc'\n.", "EXT1": b"\x82\x01.", "POP": b"N0N."}
    with case("load_pt"):
        for name, pkl in cases.items():
            msg = pt_error(rezip(good_pt, {"data.pkl": pkl}))
            assert msg and name in msg, (name, msg)


def test_malformed_pickles_are_refused(good_pt):
    od = b"\x80\x02ccollections\nOrderedDict\n)R"
    st = b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpu"
    rebuild = b"ctorch._utils\n_rebuild_tensor_v2\n("

    def tensor_pkl(numel, off, size, stride, key=b"0"):
        s = st.replace(b"X\x01\x00\x00\x000", b"X\x01\x00\x00\x00" + key)
        return (od + b"X\x01\x00\x00\x00w" + rebuild + s + b"J" + struct.pack("<i", numel) + b"tQJ" +
                struct.pack("<i", off) + b"(" + b"".join(b"J" + struct.pack("<i", v) for v in size) + b"t(" +
                b"".join(b"J" + struct.pack("<i", v) for v in stride) + b"t\x89ccollections\nOrderedDict\n)RtRs.")

    cases = {
        "view past its storage": tensor_pkl(6, 0, [3, 3], [3, 1]),
        "offset past": tensor_pkl(6, 7, [0], [1]),
        "negative stride": tensor_pkl(6, 5, [2], [-1]),
        "huge numel": tensor_pkl(2 ** 31 - 1, 0, [6], [1]),
        "huge sizes after a 0": tensor_pkl(6, 0, [0, 2 ** 30, 2 ** 30], [1, 1, 1]),
        "missing record": tensor_pkl(6, 0, [6], [1], key=b"9"),
        "bad key": tensor_pkl(6, 0, [6], [1], key=b"../x"),
        "not a dict": b"\x80\x02K\x01.",
        "memo": b"\x80\x02h\x05.",
        "underflow": b"\x80\x02R.",
        "truncated": od + b"(X\xff\xff\x00\x00w",
        "no stop": od,
        "mark": b"\x80\x02}(t.",
        "legacy": b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.",
        "list key": od + b"]K\x01s.",
        "proto": b"\x80\x09}.",
        "repeated key": od + b"(X\x01\x00\x00\x00aK\x01X\x01\x00\x00\x00aK\x02u.",
        "dotted clash": od + b"(X\x03\x00\x00\x00a.bK\x01X\x01\x00\x00\x00a}X\x01\x00\x00\x00bK\x02su.",
    }
    with case("load_pt"):
        for name, pkl in cases.items():
            b = pkl if name == "legacy" else rezip(good_pt, {"data.pkl": pkl})
            msg = pt_error(b)
            assert msg, name
        assert "legacy" in pt_error(cases["legacy"])
        assert "past its storage" in pt_error(rezip(good_pt, {"data.pkl": cases["view past its storage"]}))
        assert "9" in pt_error(rezip(good_pt, {"data.pkl": cases["missing record"]}))
        assert "implausible" in pt_error(rezip(good_pt, {"data.pkl": cases["huge sizes after a 0"]}))
        assert "'a'" in pt_error(rezip(good_pt, {"data.pkl": cases["repeated key"]}))
        assert "'a.b'" in pt_error(rezip(good_pt, {"data.pkl": cases["dotted clash"]}))


def test_truncated_and_corrupt_archives(good_pt):
    good = good_pt.read_bytes()
    with case("load_pt"):
        for k in range(0, len(good)):  # every truncation
            assert pt_error(good[:k]) is not None, k
        bad = bytearray(good)
        i = good.index(b"PK\x01\x02")
        for at, val in ((i + 42, 0xFFFFFF00), (i + 20, 0x7FFFFFFF), (i + 24, 0x7FFFFFFF)):  # offset, sizes
            b = bytearray(good)
            b[at:at + 4] = struct.pack("<I", val)
            assert pt_error(bytes(b)), at
        e = good.rindex(b"PK\x05\x06")
        b = bytearray(good)
        b[e + 16:e + 20] = struct.pack("<I", len(good) + 100)  # central directory offset
        b[e - 20 + 8:e - 20 + 16] = struct.pack("<Q", 2 ** 62)  # ZIP64 locator
        assert pt_error(bytes(b))
        with zipfile.ZipFile(good_pt) as z:
            info = z.getinfo("g/data/0")
        n = struct.unpack("<HH", good[info.header_offset + 26:info.header_offset + 30])
        j = info.header_offset + 30 + n[0] + n[1] + 5  # a storage byte: its CRC no longer matches
        b = bytearray(good)
        b[j] ^= 1
        assert "CRC" in pt_error(bytes(b))
        b = rezip(good_pt, {"byteorder": b"middle"})
        assert "byteorder" in pt_error(b)
        # a storage record shorter than its declared element count
        b = rezip(good_pt, {"data/0": b"\0" * 8})
        assert "bytes" in pt_error(b)


# ---- ctorch modules ----
def test_ctorch_module_state_dict_round_trips_through_torch(tmp_path):
    ct_lin = ctorch.module("ct_nn_linear_new", 5, 3, True)
    f = tmp_path / "lin.pt"
    with case("save_pt"):
        sd = ct_lin.state_dict()
        assert save_pt(str(f).encode(), sd._p) == 0, ctorch.lib.ct_last_error()
        lin = torch.nn.Linear(5, 3)
        lin.load_state_dict(torch.load(f, weights_only=True))
        x = torch.randn(4, 5)
        torch.testing.assert_close(ct_lin(ctorch.from_torch(x)).torch(), lin(x), rtol=1.3e-6, atol=1e-5)
    with case("load_pt"):  # and the other way: torch's weights into a ctorch module
        torch.nn.init.normal_(lin.weight)
        torch.save(lin.state_dict(), f)
        ct_lin.load_state_dict(ct_load(f))
        x = torch.randn(4, 5)
        torch.testing.assert_close(ct_lin(ctorch.from_torch(x)).torch(), lin(x), rtol=1.3e-6, atol=1e-5)


def test_torch_optimizer_state_loads_into_ctorch_optimizer(tmp_path):
    torch.manual_seed(0)
    lin = torch.nn.Linear(4, 3)
    opt = torch.optim.Adam(lin.parameters(), lr=0.01, betas=(0.8, 0.99), eps=1e-8, weight_decay=0.1)
    for _ in range(2):
        opt.zero_grad()
        lin(torch.randn(5, 4)).pow(2).sum().backward()
        opt.step()
    torch.save(opt.state_dict(), tmp_path / "opt.pt")
    ct_lin = ctorch.module("ct_nn_linear_new", 4, 3, True)
    params = ct_lin.named_parameters()
    new = _raw("ct_optim_adam_new", P, P, *([ctypes.c_double] * 5 + [ctypes.c_bool] * 2))
    ct_opt = new(params._p, 1.0, 0.9, 0.999, 1e-8, 0.0, False, False)
    try:
        with case("load_pt"):
            d = ct_load(tmp_path / "opt.pt")
            ctorch.lib.ct_clear_error()
            assert _raw("ct_optim_load_state_dict", ctypes.c_int, P, P)(ct_opt, d._p) == 0, ctorch.lib.ct_last_error()
            assert _raw("ct_optim_get_lr", ctypes.c_double, P, ctypes.c_int)(ct_opt, 0) == 0.01
            back = ctorch.Dict(_raw("ct_optim_state_dict", P, P)(ct_opt)).torch()
            for i, st in opt.state_dict()["state"].items():
                for name in ("exp_avg", "exp_avg_sq", "step"):
                    assert same(back[f"state.{i}.{name}"], st[name]), (i, name)
            assert back["param_groups.0.weight_decay"].item() == 0.1
            # torch's ("betas": (b1, b2)) pair sets beta1 and beta2
            assert back["param_groups.0.beta1"].item() == 0.8 and back["param_groups.0.beta2"].item() == 0.99
    finally:
        _raw("ct_optim_free", None, P)(ct_opt)
