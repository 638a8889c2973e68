/* Starts the float32 part of a macro configuration of unary.c's vector loops: puts the
 * functions evaluated inline (tanh, erf, log, log2, log10; exp is defined by the
 * includer, whose softmax kernels share it) in place of SLEEF's calls. The includer
 * defines VFREXP for its ISA first; unary_vec_end.h undoes all of it. Included once per
 * float32 configuration, so it has no include guard. Internal to unary.c. */
#undef VTANH
#undef VERF
#undef VLOG
#undef VLOG2
#undef VLOG10
#define VTANH(v) AS_TANH(v)
#define VERF(v) AS_ERF(v)
#define VLOG(v) AS_LOG(v)
#define VLOG2(v) AS_LOG2(v)
#define VLOG10(v) AS_LOG10(v)
