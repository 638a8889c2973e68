/* Ends one macro configuration of unary.c's vector loops: undefines what every
 * configuration defines; after a float32 one (the includer defines CT_UNARY_END_F32
 * first) also its inline-math macros, and puts VEXP, VTANH, VERF and VLOG(2/10) back on SLEEF's calls
 * for the float64 configuration that follows. Included after each configuration, so
 * it has no include guard. Internal to unary.c. */
#undef VSET
#undef VADD
#undef VSUB
#undef VMUL
#undef VDIV
#undef V_F512
#undef V_U15
#undef VGELU
#undef VABS
#undef VSIGN
#undef VOR
#ifdef CT_UNARY_END_F32
#undef VFMA
#undef VFNMA
#undef VMAX
#undef VROUND
#undef VPOW2I
#undef VMIN
#undef VSCALE
#undef VPOW2X2
#undef VPHI
#undef VSQRT
#undef VSEL_LT
#undef VSEL_EQ
#undef VEXP
#undef VTANH
#undef VERF
#undef VFREXP
#undef VLOG
#undef VLOG2
#undef VLOG10
#define VEXP(v) V_F512(exp)(v)
#define VTANH(v) V_F512(tanh)(v)
#define VERF(v) V_F512(erf)(v)
#define VLOG(v) V_F512(log)(v)
#define VLOG2(v) V_F512(log2)(v)
#define VLOG10(v) V_F512(log10)(v)
#undef CT_UNARY_END_F32
#endif
