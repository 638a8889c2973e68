/* The generator's raw draws, shared by the random front ends (src/core/random.c) and
 * the CPU sampling kernels (src/cpu/random.c). Callers hold the generator's lock. */
#ifndef CT_RANDOM_INTERNAL_H
#define CT_RANDOM_INTERNAL_H

#include "core/internal.h"

uint32_t ct__gen_random(ct_generator *g);   /* one mt19937 output */
uint64_t ct__gen_random64(ct_generator *g); /* two outputs, high word first (PyTorch's random64) */
/* the next n outputs into out: the same as n calls of ct__gen_random, in bulk */
void ct__gen_fill(ct_generator *g, uint32_t *out, int64_t n);
/* The cached second Box-Muller normal of the scalar path: take it if present. */
bool ct__gen_take_normal(ct_generator *g, double *v);
void ct__gen_put_normal(ct_generator *g, double v);

#endif
