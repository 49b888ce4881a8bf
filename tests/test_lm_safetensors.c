/* lm: the safetensors reader accepts well-formed files (F32, F16, BF16) and
 * rejects headers that lie, with messages that name the file and tensor. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "lm/safetensors.h"
#include "test_lm_util.h"

/* Build a safetensors image: header JSON + data bytes. */
static uint8_t *image(const char *json, const void *data, size_t dn, size_t *size) {
    size_t hn = strlen(json);
    *size = 8 + hn + dn;
    uint8_t *b = malloc(*size);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)hn >> (8 * i));
    memcpy(b + 8, json, hn);
    if (dn) memcpy(b + 8 + hn, data, dn);
    return b;
}

static int parse(const char *json, const void *data, size_t dn, sc_error *e) {
    size_t size;
    uint8_t *b = image(json, data, dn, &size);
    sc_safetensors st;
    int rc = sc_st_parse(&st, b, size, "t.safetensors", e);
    if (rc == SC_OK) sc_st_close(&st);
    free(b);
    return rc;
}

Test(lm_safetensors, reads_f32_f16_bf16) {
    float f[3] = {1.5f, -2.0f, 0.25f};
    uint16_t h[3] = {0x3e00, 0xc000, 0x3400};   /* F16 1.5, -2, 0.25 */
    uint16_t bf[3] = {0x3fc0, 0xc000, 0x3e80};  /* BF16 1.5, -2, 0.25 */
    uint8_t data[24];
    memcpy(data, f, 12);
    memcpy(data + 12, h, 6);
    memcpy(data + 18, bf, 6);
    const char *json = "{\"__metadata__\":{\"format\":\"pt\"},"
                       "\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
                       "\"b\":{\"dtype\":\"F16\",\"shape\":[1,3],\"data_offsets\":[12,18]},"
                       "\"c\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[18,24]}}";
    size_t size;
    uint8_t *b = image(json, data, sizeof data, &size);
    sc_safetensors st;
    sc_error e;
    cr_assert_eq(sc_st_parse(&st, b, size, "t.safetensors", &e), SC_OK, "%s", e.msg);
    cr_assert_eq(st.n, 3);
    const char *names[3] = {"a", "b", "c"};
    int64_t shapes[3][2] = {{3, 0}, {1, 3}, {3, 0}};
    for (int k = 0; k < 3; k++) {
        float *out;
        int owned;
        cr_assert_eq(sc_st_get_f32(&st, names[k], k == 1 ? 2 : 1, shapes[k], &out, &owned, &e), SC_OK, "%s", e.msg);
        for (int i = 0; i < 3; i++) cr_assert_float_eq(out[i], f[i], 0, "%s[%d]", names[k], i);
        if (owned) sc_free(out);
    }
    float *out;
    int owned;
    int64_t wrong[1] = {4};
    cr_assert_eq(sc_st_get_f32(&st, "a", 1, wrong, &out, &owned, &e), SC_EFORMAT);
    cr_assert(strstr(e.msg, "'a'") && strstr(e.msg, "[3]") && strstr(e.msg, "[4]"), "%s", e.msg);
    cr_assert_eq(sc_st_get_f32(&st, "zz", 1, wrong, &out, &owned, &e), SC_ENOTFOUND);
    cr_assert(strstr(e.msg, "t.safetensors") && strstr(e.msg, "'zz'"), "%s", e.msg);
    sc_st_close(&st);
    free(b);
}

Test(lm_safetensors, rejects_lying_headers) {
    uint8_t d[16] = {0};
    sc_error e;
    struct { const char *json; size_t dn; const char *want; } cases[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,12]}}", 16, "span"},
        {"{\"a\":{\"dtype\":\"Q4\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16, "unknown dtype 'Q4'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, "tile"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 16, "after the last"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, "truncated"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 16, "tile"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,16]}}", 16,
         "overflow"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,16]}}", 16, "shape[0]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 16, "end"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16, "twice"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]", 16, "JSON"},
        {"[1,2]", 0, "JSON object"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4]}}", 16, "data_offsets"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert_neq(parse(cases[i].json, d, cases[i].dn, &e), SC_OK, "case %zu accepted", i);
        cr_assert(strstr(e.msg, cases[i].want) && strstr(e.msg, "t.safetensors"), "case %zu: %s", i, e.msg);
    }
    /* header length beyond the file, and beyond the limit */
    uint8_t small[12] = {200, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' '};
    sc_safetensors st;
    cr_assert_eq(sc_st_parse(&st, small, sizeof small, "s", &e), SC_EFORMAT);
    cr_assert(strstr(e.msg, "past the end"), "%s", e.msg);
    uint8_t huge[12] = {0, 0, 0, 0, 0, 1, 0, 0, '{', '}', ' ', ' '};
    cr_assert_eq(sc_st_parse(&st, huge, sizeof huge, "s", &e), SC_EFORMAT);
    cr_assert(strstr(e.msg, "limit"), "%s", e.msg);
    cr_assert_eq(sc_st_parse(&st, small, 5, "s", &e), SC_EFORMAT);
    /* an empty, well-formed file */
    cr_assert_eq(parse("{}", NULL, 0, &e), SC_OK, "%s", e.msg);
}

Test(lm_safetensors, truncated_model_file) {
    char src[4200];
    snprintf(src, sizeof src, "%s/model.safetensors", lmt_model_dir());
    sc_safetensors st;
    sc_error e;
    cr_assert_eq(sc_st_open(&st, src, &e), SC_OK, "%s", e.msg);
    cr_assert_geq(st.n, 100);
    size_t keep = st.map.size - 1000;
    char tmp[] = "/tmp/sc_trunc_XXXXXX";
    int fd = mkstemp(tmp);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, st.map.data, keep), (ssize_t)keep);
    close(fd);
    sc_st_close(&st);
    cr_assert_eq(sc_st_open(&st, tmp, &e), SC_EFORMAT);
    cr_assert(strstr(e.msg, tmp) && strstr(e.msg, "truncated"), "%s", e.msg);
    unlink(tmp);
    cr_assert_eq(sc_st_open(&st, "/nonexistent/model.safetensors", &e), SC_ENOTFOUND);
}

Test(lm_safetensors, half_conversions) {
    cr_assert_float_eq(sc_f16_to_f32(0x0001), 5.9604645e-8f, 1e-14);  /* smallest subnormal */
    cr_assert_float_eq(sc_f16_to_f32(0x7bff), 65504.0f, 0);
    cr_assert(isinf(sc_f16_to_f32(0x7c00)));
    cr_assert(isnan(sc_f16_to_f32(0x7e00)));
    cr_assert_float_eq(sc_f16_to_f32(0x8000), -0.0f, 0);
    cr_assert_float_eq(sc_bf16_to_f32(0x4049), 3.140625f, 0);
}
