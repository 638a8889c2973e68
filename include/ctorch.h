/* ctorch.h — the umbrella header: a PyTorch-compatible deep learning library in C.
 *
 * Areas (one header each, all included here):
 *   ctorch/core.h        version, dtypes, devices, errors, ownership scopes, threads
 *   ctorch/tensor.h      creation, properties, views, element access, printing
 *   ctorch/autograd.h    backward, grad, hooks, grad mode, gradcheck
 *   ctorch/math.h        elementwise math, comparisons, logic
 *   ctorch/activation.h  activations, softmax, dropout
 *   ctorch/reduce.h      reductions and scans
 *   ctorch/linalg.h      matmul and friends, einsum
 *   ctorch/index.h       cat/stack/split, gather/scatter, indexing, sort/topk, pad...
 *   ctorch/random.h      generators and random sampling
 *   ctorch/dict.h        ordered name -> tensor dictionaries (state dicts)
 *   ctorch/nn.h          neural-network functions: convolution, pooling, normalisation, losses
 *   ctorch/optim.h       optimizers, learning-rate schedulers, gradient clipping
 *   ctorch/io.h          safetensors files, training checkpoints
 *   ctorch/data.h        datasets, data loaders, IDX files
 *   ctorch/module.h      modules (nn.Module), containers, simple layers and activations
 * Ownership and error rules are the same for every function: see ctorch/core.h.
 */
#ifndef CTORCH_H
#define CTORCH_H

#include "ctorch/core.h"
#include "ctorch/tensor.h"
#include "ctorch/autograd.h"
#include "ctorch/math.h"
#include "ctorch/activation.h"
#include "ctorch/reduce.h"
#include "ctorch/linalg.h"
#include "ctorch/index.h"
#include "ctorch/random.h"
#include "ctorch/dict.h"
#include "ctorch/nn.h"
#include "ctorch/io.h"
#include "ctorch/data.h"
#include "ctorch/module.h"
#include "ctorch/init.h"
#include "ctorch/optim.h"
#include "ctorch/rnn.h"
#include "ctorch/transformer.h"

#endif
