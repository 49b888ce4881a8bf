/* lm: dequantisation of every supported ggml block type equals the PyPI
 * `gguf` package's numpy reference on random blocks and on blocks of the
 * real SmolLM2 tensors (fixture made by tests/fixtures/gguf/gen_quant_fixture.py). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "lm/gguf.h"
#include "lm/quant.h"

static size_t unhex(const char *h, size_t n, uint8_t *out) {
    for (size_t i = 0; i + 1 < n; i += 2) {
        char two[3] = {h[i], h[i + 1], 0};
        out[i / 2] = (uint8_t)strtoul(two, NULL, 16);
    }
    return n / 2;
}

Test(gguf_quant, matches_gguf_reference) {
    FILE *f = fopen("tests/fixtures/gguf/quant.txt", "r");
    cr_assert(f, "fixture missing");
    static char line[1 << 17];
    int lines = 0, seen[SC_GGML_NTYPES] = {0};
    while (fgets(line, sizeof line, f)) {
        int type, nb;
        char *p = line;
        type = (int)strtol(p, &p, 10);
        nb = (int)strtol(p, &p, 10);
        p++;
        char *sp = strchr(p, ' ');
        cr_assert(sp);
        size_t nraw = (size_t)(sp - p) / 2;
        uint8_t *raw = malloc(nraw + 1);
        unhex(p, (size_t)(sp - p), raw);
        char *q = sp + 1;
        size_t qn = strcspn(q, "\n");
        size_t nval = qn / 8;
        float *want = malloc(nval * 4 + 4), *got = malloc(nval * 4 + 4);
        unhex(q, qn, (uint8_t *)want);
        cr_assert_eq(nraw, (size_t)nb * sc_ggml_type_size(type));
        cr_assert_eq(nval, (size_t)nb * sc_ggml_block_size(type));
        sc_error e;
        cr_assert_eq(sc_dequant(type, raw, got, nval, "fixture", &e), SC_OK, "%s", e.msg);
        for (size_t i = 0; i < nval; i++) {
            if (isinf(want[i])) {
                cr_assert_eq(got[i], want[i]);
                continue;
            }
            float tol = 1e-6f * fabsf(want[i]) + 1e-30f;
            cr_assert(fabsf(got[i] - want[i]) <= tol, "%s element %zu: %g vs %g", sc_ggml_type_name(type), i,
                      got[i], want[i]);
            cr_assert_eq(signbit(got[i]) != 0, signbit(want[i]) != 0, "%s element %zu: sign", sc_ggml_type_name(type), i);
        }
        seen[type] = 1;
        lines++;
        free(raw);
        free(want);
        free(got);
    }
    fclose(f);
    cr_assert_geq(lines, 25);
    int must[] = {SC_GGML_F32, SC_GGML_F16, SC_GGML_BF16, SC_GGML_Q8_0, SC_GGML_Q4_0, SC_GGML_Q4_1,
                  SC_GGML_Q5_0, SC_GGML_Q5_1, SC_GGML_Q4_K, SC_GGML_Q5_K, SC_GGML_Q6_K};
    for (size_t i = 0; i < sizeof must / sizeof *must; i++) cr_assert(seen[must[i]], "type %d untested", must[i]);
}

Test(gguf_quant, rejects_bad_arguments) {
    float out[32];
    uint8_t in[64] = {0};
    sc_error e;
    cr_assert_eq(sc_dequant(SC_GGML_Q8_0, in, out, 31, "blk.0.x", &e), SC_EINVAL);
    cr_assert(strstr(e.msg, "blk.0.x") && strstr(e.msg, "block size"), "%s", e.msg);
    cr_assert_eq(sc_dequant(SC_GGML_Q2_K, in, out, 256, "blk.1.y", &e), SC_EINVAL);
    cr_assert(strstr(e.msg, "blk.1.y") && strstr(e.msg, "Q2_K"), "%s", e.msg);
    cr_assert_eq(sc_dequant(99, in, out, 1, "z", &e), SC_EINVAL);
}
