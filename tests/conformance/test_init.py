"""nn.init against torch.nn.init: after the same seed every function gives torch's
values (orthogonal_ to float tolerance: its QR differs from LAPACK's in rounding), from
the default generator and from a given generator; in-place on parameters that require
grad without history; errors where torch raises."""
import ctypes
import math

import pytest
import torch

import ctorch
from harness import assert_same, case, check_error

L = ctorch.lib
init = torch.nn.init
seed = L.declare("ct_manual_seed", "v(i64)")
gen_new = L.declare("ct_generator_new", ctypes.c_void_p, [ctypes.c_uint64])
gen_free = L.declare("ct_generator_free", None, [ctypes.c_void_p])
gain = L.declare("ct_nn_init_calculate_gain", "d(s,d)")
F = {
    "uniform_": L.declare("ct_nn_init_uniform_", "st(T,d,d,p)"),
    "normal_": L.declare("ct_nn_init_normal_", "st(T,d,d,p)"),
    "trunc_normal_": L.declare("ct_nn_init_trunc_normal_", "st(T,d,d,d,d,p)"),
    "constant_": L.declare("ct_nn_init_constant_", "st(T,d)"),
    "ones_": L.declare("ct_nn_init_ones_", "st(T)"),
    "zeros_": L.declare("ct_nn_init_zeros_", "st(T)"),
    "eye_": L.declare("ct_nn_init_eye_", "st(T)"),
    "dirac_": L.declare("ct_nn_init_dirac_", "st(T,i64)"),
    "xavier_uniform_": L.declare("ct_nn_init_xavier_uniform_", "st(T,d,p)"),
    "xavier_normal_": L.declare("ct_nn_init_xavier_normal_", "st(T,d,p)"),
    "kaiming_uniform_": L.declare("ct_nn_init_kaiming_uniform_", "st(T,d,s,s,p)"),
    "kaiming_normal_": L.declare("ct_nn_init_kaiming_normal_", "st(T,d,s,s,p)"),
    "orthogonal_": L.declare("ct_nn_init_orthogonal_", "st(T,d,p)"),
    "sparse_": L.declare("ct_nn_init_sparse_", "st(T,d,d,p)"),
}
requires_grad = L.declare("ct_requires_grad", "b(T)")
is_leaf = L.declare("ct_is_leaf", "b(T)")


def run(name, shape, dtype, ct_args, torch_fn, *, seed_=7, use_gen=False, atol=None, rtol=None, param=True):
    """Fills a fresh tensor in both libraries after the same seed and compares."""
    with case(f"init.{name}"):
        t = torch.full(shape, 9.0, dtype=dtype)
        c = ctorch.from_torch(t.clone())
        if param:  # a leaf that requires grad, as module parameters are
            t.requires_grad_(True)
            c.requires_grad_()
        if use_gen:
            g = torch.Generator().manual_seed(seed_)
            cg = gen_new(seed_)
            try:
                torch_fn(t, g)
                F[name](c, *ct_args, cg)
            finally:
                gen_free(cg)
        else:
            torch.manual_seed(seed_)
            torch_fn(t, None)
            seed(seed_)
            F[name](c, *ct_args, *([None] if name not in NO_GEN else []))
        assert_same(c, t.detach(), atol=atol, rtol=rtol)
        if param:
            assert requires_grad(c) and is_leaf(c)
        # the next draws continue from the same point in both streams
        if not use_gen and name not in NO_GEN:
            assert_same(L.ct_rand(ctorch_shape(4), torch.float64, None), torch.rand(4, dtype=torch.float64),
                        what="next draw")


NO_GEN = {"constant_", "ones_", "zeros_", "eye_", "dirac_"}
L.declare("ct_rand", "T(shape,dt,p)")


def ctorch_shape(*s):
    return list(s)


SHAPES = [(5, 3), (3, 5), (4, 3, 2, 2), (16, 40), (1, 1), (7,)]
DTYPES = [torch.float32, torch.float64]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("use_gen", [False, True])
def test_uniform_normal(shape, dtype, use_gen):
    run("uniform_", shape, dtype, (-0.5, 2.0), lambda t, g: init.uniform_(t, -0.5, 2.0, generator=g), use_gen=use_gen)
    run("normal_", shape, dtype, (1.5, 0.3), lambda t, g: init.normal_(t, 1.5, 0.3, generator=g), use_gen=use_gen)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES + [(64,), (33, 17)])
@pytest.mark.parametrize("args", [(0.0, 1.0, -2.0, 2.0), (0.5, 2.0, -1.0, 1.0), (0.0, 1.0, 1.0, 3.0),
                                  (0.0, 1.0, 2.5, 4.0), (3.0, 0.5, 0.0, 1.0), (0.0, 0.02, -0.04, 0.04)])
@pytest.mark.parametrize("use_gen", [False, True])
def test_trunc_normal(shape, dtype, args, use_gen):
    # both branches of torch's sampler: the normal-redraw one (mass in [a, b] > 0.3) and
    # the uniform rejection one (the tails)
    run("trunc_normal_", shape, dtype, args, lambda t, g: init.trunc_normal_(t, *args, generator=g), use_gen=use_gen)


@pytest.mark.parametrize("shape", SHAPES)
def test_constant_ones_zeros(shape):
    for dt in DTYPES:
        run("constant_", shape, dt, (0.3,), lambda t, g: init.constant_(t, 0.3))
        run("ones_", shape, dt, (), lambda t, g: init.ones_(t))
        run("zeros_", shape, dt, (), lambda t, g: init.zeros_(t))


@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (4, 4), (0, 3)])
def test_eye(shape):
    run("eye_", shape, torch.float32, (), lambda t, g: init.eye_(t))


@pytest.mark.parametrize("shape,groups", [((4, 3, 3), 1), ((6, 4, 3, 3), 2), ((2, 5, 3, 4), 1), ((6, 2, 3, 3, 3), 3),
                                          ((4, 4, 2, 2), 4)])
def test_dirac(shape, groups):
    run("dirac_", shape, torch.float32, (groups,), lambda t, g: init.dirac_(t, groups))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [s for s in SHAPES if len(s) >= 2])
@pytest.mark.parametrize("use_gen", [False, True])
def test_xavier(shape, dtype, use_gen):
    for gn in (1.0, 0.7):
        run("xavier_uniform_", shape, dtype, (gn,), lambda t, g: init.xavier_uniform_(t, gn, generator=g),
            use_gen=use_gen)
        run("xavier_normal_", shape, dtype, (gn,), lambda t, g: init.xavier_normal_(t, gn, generator=g),
            use_gen=use_gen)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [s for s in SHAPES if len(s) >= 2] + [(0, 3), (0,)])
@pytest.mark.parametrize("opts", [(0.0, "fan_in", "leaky_relu"), (math.sqrt(5), "fan_in", "leaky_relu"),
                                  (0.0, "fan_out", "relu"), (0.2, "fan_out", "leaky_relu"), (0.0, "fan_in", "tanh"),
                                  (0.0, "fan_in", "selu"), (0.0, "fan_in", "linear")])
def test_kaiming(shape, dtype, opts):
    a, mode, nl = opts
    run("kaiming_uniform_", shape, dtype, opts, lambda t, g: init.kaiming_uniform_(t, a, mode, nl, generator=g))
    run("kaiming_normal_", shape, dtype, opts, lambda t, g: init.kaiming_normal_(t, a, mode, nl, generator=g))


def test_kaiming_defaults_null_strings():
    run("kaiming_uniform_", (6, 4), torch.float32, (0.0, None, None), lambda t, g: init.kaiming_uniform_(t))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (4, 3, 2, 2), (16, 40), (40, 16), (1, 1), (6, 6), (2, 1, 3)])
@pytest.mark.parametrize("use_gen", [False, True])
def test_orthogonal(shape, dtype, use_gen):
    tol = dict(atol=1e-5, rtol=1e-4) if dtype == torch.float32 else dict(atol=1e-12, rtol=1e-10)
    for gn in (1.0, 2.5):
        run("orthogonal_", shape, dtype, (gn,), lambda t, g: init.orthogonal_(t, gn, generator=g), use_gen=use_gen,
            **tol)


@pytest.mark.parametrize("shape,sparsity", [((10, 4), 0.3), ((7, 5), 0.5), ((6, 3), 0.0), ((5, 2), 1.0)])
def test_sparse(shape, sparsity):
    run("sparse_", shape, torch.float32, (sparsity, 0.01), lambda t, g: init.sparse_(t, sparsity, 0.01))


def test_calculate_gain():
    with case("init.calculate_gain"):
        for nl in ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                   "conv_transpose3d", "sigmoid", "tanh", "relu", "selu"]:
            assert gain(nl, float("nan")) == init.calculate_gain(nl)
        assert gain("leaky_relu", float("nan")) == init.calculate_gain("leaky_relu")
        assert gain("leaky_relu", 0.2) == init.calculate_gain("leaky_relu", 0.2)
        assert gain("leaky_relu", 0.0) == init.calculate_gain("leaky_relu", 0)
        with pytest.raises(ValueError):
            init.calculate_gain("softmax")
        with pytest.raises(ctorch.CtorchError, match="calculate_gain"):
            gain("softmax", 0.0)


def _err(name, ct_fn, torch_fn, shape, match=None):
    check_error(f"init.{name}", ct_fn, torch_fn, [torch.empty(shape)], names=[name], match=match)


def test_errors():
    _err("eye_", lambda t: F["eye_"](t), init.eye_, (3,))
    _err("eye_", lambda t: F["eye_"](t), init.eye_, (2, 3, 4))
    _err("dirac_", lambda t: F["dirac_"](t, 1), init.dirac_, (3, 3))
    _err("dirac_", lambda t: F["dirac_"](t, 2), lambda t: init.dirac_(t, 2), (3, 3, 3))
    _err("xavier_uniform_", lambda t: F["xavier_uniform_"](t, 1.0, None), init.xavier_uniform_, (5,))
    _err("xavier_normal_", lambda t: F["xavier_normal_"](t, 1.0, None), init.xavier_normal_, (5,))
    _err("xavier_uniform_", lambda t: F["xavier_uniform_"](t, 1.0, None), init.xavier_uniform_, (0, 0))
    _err("kaiming_uniform_", lambda t: F["kaiming_uniform_"](t, 0.0, "fan_in", "leaky_relu", None),
         init.kaiming_uniform_, (5,))
    _err("kaiming_normal_", lambda t: F["kaiming_normal_"](t, 0.0, "fan_avg", "leaky_relu", None),
         lambda t: init.kaiming_normal_(t, mode="fan_avg"), (5, 3))
    _err("kaiming_normal_", lambda t: F["kaiming_normal_"](t, 0.0, "fan_in", "softmax", None),
         lambda t: init.kaiming_normal_(t, nonlinearity="softmax"), (5, 3))
    _err("orthogonal_", lambda t: F["orthogonal_"](t, 1.0, None), init.orthogonal_, (5,))
    _err("sparse_", lambda t: F["sparse_"](t, 0.1, 0.01, None), lambda t: init.sparse_(t, 0.1), (5, 3, 2))
    _err("normal_", lambda t: F["normal_"](t, 0.0, -1.0, None), lambda t: init.normal_(t, 0.0, -1.0), (5, 3))
    _err("uniform_", lambda t: F["uniform_"](t, 1.0, 0.0, None), lambda t: init.uniform_(t, 1.0, 0.0), (5, 3))


def test_empty_and_0dim_noops():
    with case("init.empty"):
        for name, fn in [("orthogonal_", lambda c: F["orthogonal_"](c, 1.0, None)),
                         ("kaiming_uniform_", lambda c: F["kaiming_uniform_"](c, 0.0, "fan_in", "relu", None))]:
            c = ctorch.from_torch(torch.empty(0, 4))
            fn(c)
            assert c.torch().shape == (0, 4)
