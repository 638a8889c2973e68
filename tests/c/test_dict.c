/* ct_dict: ordered name -> tensor maps with metadata (state dicts). */
#include <stdio.h>
#include <string.h>

#include <ctorch.h>

#include "check.h"

int main(void) {
    int64_t live0 = ct_live_tensors();
    ct_dict *d = ct_dict_new();
    CHECK(d && ct_dict_size(d) == 0);
    ct_scope_begin();
    char name[64];
    for (int i = 0; i < 300; i++) { /* enough to grow the hash index several times */
        snprintf(name, sizeof name, "layers.%d.weight", i);
        CHECK(ct_dict_set(d, name, ct_full(CT_SHAPE(2), (double)i, CT_FLOAT32)) == 0);
    }
    CHECK(ct_dict_size(d) == 300);
    CHECK(strcmp(ct_dict_key(d, 0), "layers.0.weight") == 0);
    CHECK(strcmp(ct_dict_key(d, 299), "layers.299.weight") == 0);
    for (int i = 0; i < 300; i += 37) {
        snprintf(name, sizeof name, "layers.%d.weight", i);
        ct_tensor *t = ct_dict_get(d, name);
        CHECK(t && at(t, 1) == i);
        CHECK(ct_dict_contains(d, name));
    }
    /* replacing keeps the position */
    CHECK(ct_dict_set(d, "layers.5.weight", ct_zeros(CT_SHAPE(3), CT_FLOAT64)) == 0);
    CHECK(ct_dict_size(d) == 300 && strcmp(ct_dict_key(d, 5), "layers.5.weight") == 0);
    CHECK(ct_numel(ct_dict_value(d, 5)) == 3);
    /* removal keeps the order of the rest and the index consistent */
    CHECK(ct_dict_remove(d, "layers.0.weight") == 0);
    CHECK(ct_dict_size(d) == 299 && strcmp(ct_dict_key(d, 0), "layers.1.weight") == 0);
    CHECK(!ct_dict_contains(d, "layers.0.weight") && ct_dict_contains(d, "layers.299.weight"));
    /* errors */
    ct_clear_error();
    CHECK(ct_dict_get(d, "nope") == NULL && ct_last_status() == CT_ERR_KEY && strstr(ct_last_error(), "nope"));
    CHECK(ct_dict_remove(d, "nope") == CT_ERR_KEY);
    CHECK(ct_dict_key(d, 299) == NULL && ct_last_status() == CT_ERR_INDEX);
    CHECK(ct_dict_set(d, "", ct_zeros(CT_SHAPE(1), CT_FLOAT32)) == CT_ERR_ARG);
    ct_clear_error();
    CHECK(ct_dict_set(d, "x", NULL) == CT_ERR_NULL);
    CHECK(ct_dict_get(NULL, "x") == NULL);
    ct_clear_error();
    /* metadata */
    CHECK(ct_dict_meta(d, "format") == NULL && ct_last_status() == CT_OK);
    CHECK(ct_dict_set_meta(d, "format", "pt") == 0 && ct_dict_set_meta(d, "epoch", "3") == 0);
    CHECK(ct_dict_set_meta(d, "format", "np") == 0);
    CHECK(ct_dict_meta_size(d) == 2 && strcmp(ct_dict_meta(d, "format"), "np") == 0);
    CHECK(strcmp(ct_dict_meta_key(d, 1), "epoch") == 0 && strcmp(ct_dict_meta_value(d, 1), "3") == 0);
    /* copies share tensors and are independent maps */
    ct_dict *c = ct_dict_copy(d);
    CHECK(c && ct_dict_size(c) == 299 && ct_dict_meta_size(c) == 2);
    CHECK(ct_dict_remove(c, "layers.1.weight") == 0 && ct_dict_size(d) == 299);
    ct_dict_free(c);
    ct_scope_end();
    ct_dict_free(d);
    ct_dict_free(NULL);
    CHECK(ct_live_tensors() == live0);
    printf("test_dict: %d checks, %d failures\n", checks, failures);
    return failures != 0;
}
