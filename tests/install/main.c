/* A consumer of an installed ctorch: built by `make test-install` against the
 * installed headers and library only (once through CMake's find_package(ctorch), once
 * through pkg-config), to check that the install tree is usable on its own. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <ctorch.h>

int main(void) {
    printf("ctorch %s\n", ct_version());
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", CT_VERSION_MAJOR, CT_VERSION_MINOR, CT_VERSION_PATCH);
    if (strcmp(ct_version(), want) != 0) {
        fprintf(stderr, "library version %s does not match the headers' %s\n", ct_version(), want);
        return 1;
    }

    ct_scope_begin();
    ct_tensor *a = ct_from_data((const float[]){1, 2, 3, 4, 5, 6}, CT_SHAPE(2, 3), CT_FLOAT32);
    ct_tensor *b = ct_ones(CT_SHAPE(3), CT_FLOAT32);
    ct_tensor *c = ct_add(a, b); /* broadcast [2, 3] + [3] */
    if (!c) {
        fprintf(stderr, "add failed: %s\n", ct_last_error());
        ct_scope_end();
        return 1;
    }
    char *s = ct_to_string(c);
    if (s) printf("%s\n", s);
    ct_free_string(s);

    int ok = ct_ndim(c) == 2 && ct_size(c, 0) == 2 && ct_size(c, 1) == 3 && ct_get_dtype(c) == CT_FLOAT32;
    ok = ok && fabs(ct_get(c, (const int64_t[]){1, 2}) - 7.0) < 1e-6;
    ct_scope_end();

    if (ct_live_tensors() != 0) {
        fprintf(stderr, "%lld tensors still alive after the scope closed\n", (long long)ct_live_tensors());
        ok = 0;
    }
    printf("%s\n", ok ? "install test: ok" : "install test: FAILED");
    return ok ? 0 : 1;
}
