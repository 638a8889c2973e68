/* SLEEF's x86 vector functions for the hand-written kernels (unary.c, binary.c).
 * SLEEF declares them only when the ISA macros are defined; the library is built for
 * the baseline ISA, so they are declared under a temporary target (GCC's pragma; clang
 * builds, such as the fuzz targets, take the scalar libm paths: CT_HAVE_SLEEF_X86 is
 * not defined there). Internal. */
#ifndef CT_CPU_SLEEF_X86_H
#define CT_CPU_SLEEF_X86_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CT_HAVE_SLEEF_X86 1
#ifndef FP_FAST_FMA
#define CT_SLEEF_UNDEF_FMA 1
#endif
#include <x86intrin.h> /* first, so the intrinsics keep their own target options */
#pragma GCC push_options
#pragma GCC target("avx2,fma,avx512f")
#include <sleef.h>
#pragma GCC pop_options
#ifdef CT_SLEEF_UNDEF_FMA /* the target pragma must not leave FP_FAST_FMA defined for the baseline code */
#undef FP_FAST_FMA
#undef FP_FAST_FMAF
#undef CT_SLEEF_UNDEF_FMA
#endif
#endif

#endif
