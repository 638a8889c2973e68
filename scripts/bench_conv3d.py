"""conv3d forward + backward time, ctorch vs torch (torch.set_num_threads(2)):
input [2, 8, 16, 32, 32], 16 filters 3x3x3, padding 1, bias; best of 5 after a warm-up.
    CTORCH_LIB=build/libctorch.so PYTHONPATH=python OMP_NUM_THREADS=2 python3 scripts/bench_conv3d.py
On a machine shared with other jobs, OMP_WAIT_POLICY=PASSIVE keeps spinning OpenMP
threads from dominating the timings."""
import ctypes, time, torch, torch.nn.functional as F
import ctorch
torch.set_num_threads(2)
I3 = ctypes.c_int64*3
class C3(ctypes.Structure):
    _fields_=[("stride",I3),("padding",I3),("dilation",I3),("groups",ctypes.c_int64),("padding_mode",ctypes.c_char_p),("padding_fill",ctypes.c_char_p)]
conv3d = ctorch._raw("ct_nn_conv3d", ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(C3))
backward = ctorch.lib.declare("ct_backward", "st(T,T,b,b)")
x=torch.randn(2,8,16,32,32); w=torch.randn(16,8,3,3,3)*0.1; b=torch.randn(16)
o=C3(I3(1,1,1),I3(1,1,1),I3(1,1,1),1,None,None)
def ct_step():
    cx=ctorch.from_torch(x).requires_grad_(); cw=ctorch.from_torch(w).requires_grad_(); cb=ctorch.from_torch(b).requires_grad_()
    t0=time.perf_counter()
    ctorch.lib.ct_clear_error()
    y=ctorch.Tensor(conv3d(cx.ptr,cw.ptr,cb.ptr,ctypes.byref(o)))
    t1=time.perf_counter()
    g=ctorch.from_torch(torch.ones(y.torch().shape))
    t1b=time.perf_counter()
    backward(y,g,False,False)
    t2=time.perf_counter()
    return t1-t0,t2-t1b
def t_step():
    tx=x.clone().requires_grad_(); tw=w.clone().requires_grad_(); tb=b.clone().requires_grad_()
    t0=time.perf_counter(); y=F.conv3d(tx,tw,tb,padding=1); t1=time.perf_counter()
    y.backward(torch.ones_like(y)); t2=time.perf_counter(); return t1-t0,t2-t1
for name,f in (("ctorch",ct_step),("torch",t_step)):
    f(); rs=[f() for _ in range(5)]
    fw=min(r[0] for r in rs); bw=min(r[1] for r in rs)
    print(f"{name}: forward {fw*1e3:.1f} ms, backward {bw*1e3:.1f} ms, total {(fw+bw)*1e3:.1f} ms")
