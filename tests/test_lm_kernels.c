/* lm: the kernels of a prompt's forward pass besides the integer dot
 * products (those: test_lm_qdot.c).
 *
 * The bfloat16 tile path of the matrix products (SC_QMM_INT_BF16,
 * lm/qmatmul.h), what SC_QMM_AUTO runs prompts on where the CPU has
 * AVX512_BF16:
 *  1. rounding to bfloat16: nearest even, subnormals to signed zero, NaN
 *     kept; the AVX512_BF16 conversion (sc_bf16_round) == the plain C one
 *     (sc_bf16_of) bit for bit, on edge cases and random values; packing
 *     puts every value where the kernels read it;
 *  2. the AVX512_BF16 tile kernel == the plain C kernel bit for bit (both
 *     add x[2p+1] w[2p+1], then x[2p] w[2p], in order of p), for T and R at
 *     and around the kernel's 16-row groups and 6-row blocks;
 *  3. the plain C kernel == the double-precision dot of the rounded values
 *     within the float accumulation bound 2^-23 * IC * sum |x w|;
 *  4. sc_qmatmul(SC_QMM_INT_BF16) == the double-precision product of the
 *     dequantised weights and the float activations within the rounding of
 *     both to bfloat16: 2 * 2^-8 * sum |x w| (each rounding at most 2^-9
 *     relative), on Q5_0, Q8_0, Q4_K, Q6_K and F16 weights, 1 and 2 threads;
 *  5. segments in one call == each segment alone, bit for bit.
 * The gated activation sc_glu (SwiGLU, GeGLU): AVX2 == the plain C formula
 * with expf within 4 ulp plus 2|a| ulp (the argument a rounded in another
 * order moves exp(-a) by |a| times its rounding; 1e-30 absolute where the
 * clamped exp saturates), on ordinary and extreme inputs. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/util.h"
#include "lm/gguf.h"
#include "lm/qmatmul.h"
#include "lm/safetensors.h"

static float f32_of_bf16(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint16_t plain_round(float v) { return sc_bf16_of(v); }

Test(lm_bf16, rounding_edge_cases) {
    struct {
        uint32_t in;
        uint16_t want;
    } cases[] = {
        {0x3f800000u, 0x3f80}, /* 1 */
        {0x3f808000u, 0x3f80}, /* halfway, even below: stays */
        {0x3f818000u, 0x3f82}, /* halfway, odd below: up to even */
        {0x3f808001u, 0x3f81}, /* just above halfway: up */
        {0xbf80ffffu, 0xbf81}, /* negative: up in magnitude */
        {0x00000001u, 0x0000}, /* subnormal: zero */
        {0x807fffffu, 0x8000}, /* negative subnormal: -0 */
        {0x00800000u, 0x0080}, /* smallest normal */
        {0x7f7fffffu, 0x7f80}, /* largest float rounds to inf */
        {0x7f800000u, 0x7f80}, /* inf */
        {0x80000000u, 0x8000}, /* -0 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        float v = from_bits(cases[i].in);
        uint16_t got;
        sc_bf16_round(&v, 1, &got);
        cr_assert_eq(plain_round(v), cases[i].want, "plain %08x -> %04x, want %04x", cases[i].in, plain_round(v), cases[i].want);
        cr_assert_eq(got, cases[i].want, "sc_bf16_round %08x -> %04x, want %04x", cases[i].in, got, cases[i].want);
    }
    float nan = from_bits(0x7fc00001u);
    uint16_t h;
    sc_bf16_round(&nan, 1, &h);
    cr_assert(isnan(f32_of_bf16(h)) && isnan(f32_of_bf16(plain_round(nan))));
    /* random values of every magnitude, n not a multiple of 32 (the masked tail) */
    sc_rng r;
    sc_rng_seed(&r, 9);
    enum { N = 1000 };
    float *x = malloc(N * 4);
    uint16_t *a = malloc(N * 2);
    for (int i = 0; i < N; i++) x[i] = from_bits((uint32_t)sc_rng_below(&r, 0xff000000u)) * (i % 2 ? 1 : -1);
    for (int i = 0; i < N; i++)
        if (isnan(x[i])) x[i] = 1;
    sc_bf16_round(x, N, a);
    for (int i = 0; i < N; i++) cr_assert_eq(a[i], plain_round(x[i]), "value %d (%g): %04x vs %04x", i, x[i], a[i], plain_round(x[i]));
    free(x);
    free(a);
}

/* x[t][k] lands at xp[g][p][l][h], t = 16g + l, k = 2p + h; rows past T are zero */
Test(lm_bf16, pack_layout) {
    int T = 35, IC = 100, P = IC / 2, G = 3;
    float *x = malloc((size_t)T * IC * 4);
    for (int i = 0; i < T * IC; i++) x[i] = (float)(i % 997) - 498.0f; /* exact in bfloat16 */
    uint16_t *xp = malloc(sc_bf16_pack_bytes(T, IC));
    cr_assert_eq(sc_bf16_pack_bytes(T, IC), (size_t)G * 16 * IC * 2);
    memset(xp, 0xAB, sc_bf16_pack_bytes(T, IC));
    sc_bf16_pack(x, T, IC, xp);
    for (int g = 0; g < G; g++)
        for (int p = 0; p < P; p++)
            for (int l = 0; l < 16; l++)
                for (int h = 0; h < 2; h++) {
                    int t = 16 * g + l;
                    uint16_t got = xp[(((size_t)g * P + p) * 16 + l) * 2 + h];
                    cr_assert_eq(got, t < T ? sc_bf16_of(x[(size_t)t * IC + 2 * p + h]) : 0, "t %d k %d", t, 2 * p + h);
                }
    free(x);
    free(xp);
}

static void random_bf16(uint16_t *v, size_t n, sc_rng *r) {
    for (size_t i = 0; i < n; i++) {
        float f = sc_rng_normal(r) * (i % 5 == 0 ? 10.0f : 1.0f);
        sc_bf16_round(&f, 1, &v[i]);
    }
}

Test(lm_bf16, tile_kernel_avx512_equals_plain) {
    sc_bf16_tile_fn plain = sc_bf16_tile_get(SC_ISA_PLAIN), fast = sc_bf16_tile_get(SC_ISA_AVX512);
    cr_assert(plain);
    if (!fast) cr_skip_test("this CPU has no AVX512_BF16: only the plain C kernel runs");
    sc_rng r;
    sc_rng_seed(&r, 11);
    int Ts[] = {1, 2, 15, 16, 17, 33, 64, 65, 70}, Rs[] = {1, 5, 6, 7, 12, 13, 64}, ICs[] = {32, 96, 512};
    for (size_t ii = 0; ii < sizeof ICs / sizeof *ICs; ii++)
        for (size_t ti = 0; ti < sizeof Ts / sizeof *Ts; ti++)
            for (size_t ri = 0; ri < sizeof Rs / sizeof *Rs; ri++) {
                int T = Ts[ti], R = Rs[ri], IC = ICs[ii];
                float *x = malloc((size_t)T * IC * 4);
                for (int i = 0; i < T * IC; i++) x[i] = sc_rng_normal(&r);
                uint16_t *xp = sc_aligned_alloc(sc_bf16_pack_bytes(T, IC)), *wt = malloc((size_t)R * IC * 2);
                sc_bf16_pack(x, T, IC, xp);
                random_bf16(wt, (size_t)R * IC, &r);
                size_t ldo = (size_t)R + 3; /* a wider output row: only [t][0..R) is written */
                float *a = malloc((size_t)T * ldo * 4), *b = malloc((size_t)T * ldo * 4);
                for (size_t i = 0; i < (size_t)T * ldo; i++) a[i] = b[i] = -1234.5f;
                plain(xp, T, wt, R, IC, a, ldo);
                fast(xp, T, wt, R, IC, b, ldo);
                for (size_t i = 0; i < (size_t)T * ldo; i++)
                    cr_assert_eq(memcmp(&a[i], &b[i], 4), 0, "T %d R %d IC %d out[%zu][%zu]: plain %.9g vs AVX512_BF16 %.9g", T, R,
                                 IC, i / ldo, i % ldo, a[i], b[i]);
                sc_free(xp);
                free(x); free(wt); free(a); free(b);
            }
}

Test(lm_bf16, plain_kernel_equals_double_dot) {
    sc_rng r;
    sc_rng_seed(&r, 13);
    int T = 19, R = 9, IC = 768;
    float *x = malloc((size_t)T * IC * 4), *out = malloc((size_t)T * R * 4);
    for (int i = 0; i < T * IC; i++) x[i] = sc_rng_normal(&r);
    uint16_t *xp = sc_aligned_alloc(sc_bf16_pack_bytes(T, IC)), *xr = malloc((size_t)T * IC * 2), *wt = malloc((size_t)R * IC * 2);
    sc_bf16_pack(x, T, IC, xp);
    sc_bf16_round(x, (size_t)T * IC, xr);
    random_bf16(wt, (size_t)R * IC, &r);
    sc_bf16_tile_get(SC_ISA_PLAIN)(xp, T, wt, R, IC, out, R);
    for (int t = 0; t < T; t++)
        for (int o = 0; o < R; o++) {
            double d = 0, s = 0;
            for (int k = 0; k < IC; k++) {
                double p = (double)f32_of_bf16(xr[(size_t)t * IC + k]) * f32_of_bf16(wt[(size_t)o * IC + k]);
                d += p;
                s += fabs(p);
            }
            cr_assert_leq(fabs(out[t * R + o] - d), ldexp(1, -23) * IC * s, "[%d][%d]: %.9g vs %.9g", t, o, out[t * R + o], d);
        }
    sc_free(xp);
    free(x); free(out); free(xr); free(wt);
}

/* a random fp16 scale 2^e, e in [lo, lo + 3] */
static uint16_t scale_f16(sc_rng *r, int lo) { return (uint16_t)((15 + lo + (int)sc_rng_below(r, 4)) << 10 | sc_rng_below(r, 1024)); }

/* OC rows of IC random blocks of type with sane scales (every quantised bit
 * pattern of the values) */
static sc_qtensor random_matrix(int type, int OC, int IC, sc_rng *r) {
    int bs = sc_ggml_block_size(type), ts = sc_ggml_type_size(type);
    size_t rb = (size_t)IC / bs * ts;
    uint8_t *wd = malloc(rb * OC);
    for (size_t i = 0; i < rb * OC; i++) wd[i] = (uint8_t)sc_rng_below(r, 256);
    for (size_t b = 0; b < rb * OC / ts; b++) {
        uint8_t *blk = wd + b * ts;
        uint16_t h[2] = {scale_f16(r, -7), scale_f16(r, -8)};
        switch (type) {
        case SC_GGML_Q8_0: case SC_GGML_Q5_0: memcpy(blk, h, 2); break;
        case SC_GGML_Q4_K: memcpy(blk, h, 4); break;
        case SC_GGML_Q6_K: memcpy(blk + 208, h, 2); break;
        case SC_GGML_F16: h[0] = (uint16_t)(scale_f16(r, -2) | (sc_rng_below(r, 2) << 15)); memcpy(blk, h, 2); break;
        default: break;
        }
    }
    return (sc_qtensor){type, OC, IC, rb, wd};
}

Test(lm_bf16, qmatmul_bf16_equals_float_product) {
    sc_rng r;
    sc_rng_seed(&r, 17);
    int OC = 70, IC = 512, T = 37; /* neither a multiple of the tiles */
    int types[] = {SC_GGML_Q5_0, SC_GGML_Q8_0, SC_GGML_Q4_K, SC_GGML_Q6_K, SC_GGML_F16};
    for (int threads = 1; threads <= 2; threads++) {
        sc_pool *pool = threads > 1 ? sc_pool_new(threads) : NULL;
        for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
            sc_qtensor w = random_matrix(types[ti], OC, IC, &r);
            float *x = malloc((size_t)T * IC * 4), *got = malloc((size_t)T * OC * 4), *wf = malloc((size_t)OC * IC * 4);
            for (int i = 0; i < T * IC; i++) x[i] = sc_rng_normal(&r) * (i % 64 < 32 ? 1.0f : 0.01f);
            for (int o = 0; o < OC; o++) sc_qtensor_row(&w, o, wf + (size_t)o * IC);
            const sc_qtensor *ws[1] = {&w};
            float *outs[1] = {got};
            sc_error e;
            cr_assert_eq(sc_qmatmul(1, outs, ws, x, T, pool, SC_QMM_INT_BF16, &e), SC_OK, "%s", e.msg);
            for (int t = 0; t < T; t++)
                for (int o = 0; o < OC; o++) {
                    double d = 0, s = 0;
                    for (int k = 0; k < IC; k++) {
                        double p = (double)x[(size_t)t * IC + k] * wf[(size_t)o * IC + k];
                        d += p;
                        s += fabs(p);
                    }
                    cr_assert_leq(fabs(got[t * OC + o] - d), ldexp(1, -7) * s + 1e-30, "%s [%d][%d]: %.9g vs %.9g (sum |xw| %g)",
                                  sc_ggml_type_name(types[ti]), t, o, got[t * OC + o], d, s);
                }
            free((void *)w.data); free(x); free(got); free(wf);
        }
        sc_pool_free(pool);
    }
}

Test(lm_bf16, qmatmul_bf16_segments_equal_separate_calls) {
    sc_rng r;
    sc_rng_seed(&r, 19);
    int OC = 100, IC = 256;
    int seg[7] = {0, 1, 18, 19, 53, 54, 70}; /* lengths 1, 17, 1, 34, 1, 16: integer and bf16 segments */
    int T = seg[6];
    sc_pool *pool = sc_pool_new(2);
    sc_qtensor w = random_matrix(SC_GGML_Q5_0, OC, IC, &r);
    float *x = malloc((size_t)T * IC * 4), *want = malloc((size_t)T * OC * 4), *got = malloc((size_t)T * OC * 4);
    for (int i = 0; i < T * IC; i++) x[i] = sc_rng_normal(&r);
    const sc_qtensor *ws[1] = {&w};
    sc_error e;
    for (int s = 0; s < 6; s++) {
        float *o[1] = {want + (size_t)seg[s] * OC};
        cr_assert_eq(sc_qmatmul(1, o, ws, x + (size_t)seg[s] * IC, seg[s + 1] - seg[s], pool, SC_QMM_INT_BF16, &e), SC_OK);
    }
    float *o[1] = {got};
    cr_assert_eq(sc_qmatmul_seg(1, o, ws, x, seg, 6, pool, SC_QMM_INT_BF16, &e), SC_OK, "%s", e.msg);
    for (int i = 0; i < T * OC; i++)
        cr_assert_eq(memcmp(&got[i], &want[i], 4), 0, "[%d, %d]: %g vs %g", i / OC, i % OC, got[i], want[i]);
    free((void *)w.data); free(x); free(want); free(got);
    sc_pool_free(pool);
}

Test(lm_glu, avx2_equals_plain_formula) {
    if (!sc_isa_available(SC_ISA_AVX2)) cr_skip_test("this CPU has no AVX2: sc_glu is the plain formula");
    sc_rng r;
    sc_rng_seed(&r, 23);
    enum { N = 4099 }; /* a tail of 3 for the plain loop */
    float *g = malloc(N * 4), *u = malloc(N * 4), *want = malloc(N * 4), *tol = malloc(N * 4);
    float edge[] = {0.0f, -0.0f, 1e-3f, -1e-3f, 20.0f, -20.0f, 87.0f, -87.0f, 88.5f, -88.5f, 100.0f, -100.0f, 1e4f, -1e4f};
    const float k2 = 2.0f * 0.79788456080286535588f;
    for (int gelu = 0; gelu <= 1; gelu++) {
        for (int i = 0; i < N; i++) {
            g[i] = i < (int)(sizeof edge / sizeof *edge) ? edge[i] : sc_rng_normal(&r) * (i % 3 ? 3.0f : 0.3f);
            u[i] = sc_rng_normal(&r);
            float x = g[i], a = gelu ? k2 * x * (1.0f + 0.044715f * x * x) : x;
            want[i] = x / (1.0f + expf(-a)) * u[i];
            /* 4 ulp, plus a rounding of a (computed in another order there)
             * times exp's sensitivity |a|; 1e-30 where the exp saturates */
            tol[i] = (4 + 2 * fabsf(a)) * ldexpf(fabsf(want[i]), -23) + 1e-30f;
        }
        sc_glu(g, u, N, gelu);
        for (int i = 0; i < N; i++)
            cr_assert_leq(fabsf(g[i] - want[i]), tol[i], "%s %d: %.9g vs %.9g", gelu ? "GeGLU" : "SwiGLU", i, g[i], want[i]);
    }
    free(g); free(u); free(want); free(tol);
}
