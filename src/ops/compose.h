/* Composite ops (built from public ops) run in a private scope and hand their result
 * to the caller's: CT_COMPOSE_BEGIN, assign r_, CT_COMPOSE_END. Internal. */
#ifndef CT_OPS_COMPOSE_H
#define CT_OPS_COMPOSE_H

#define CT_COMPOSE_BEGIN                     \
    if (ct_scope_begin()) return NULL;       \
    ct_tensor *r_ = NULL;
#define CT_COMPOSE_END                       \
    if (r_) r_ = ct_keep(r_);                \
    ct_scope_end();                          \
    return r_;

#endif
