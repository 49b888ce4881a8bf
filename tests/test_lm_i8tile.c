/* lm: the 8-bit integer tile path of the matrix products (SC_QMM_INT_VNNI,
 * lm/qmatmul.h), what SC_QMM_AUTO runs a prompt's Q8_0 / Q4_0 / Q5_0
 * weights on where the CPU has AVX512_VNNI (and AVX512_BF16):
 *  1. unpacking: (u - off) * d == sc_dequant's value for every element of
 *     random blocks (positive, negative, zero scales), so the unsigned bytes
 *     and scales are the weights exactly;
 *  2. packing: every quantised activation byte, block scale and block sum
 *     sits where the kernels read it, equal to sc_qact_quantize's row;
 *  3. the AVX512_VNNI tile kernel == the plain C kernel bit for bit, for T
 *     and R at and around its 16-token groups, 3-row blocks, 16 x 16
 *     transposes and 48-row x 256-token chunks;
 *  4. the plain C kernel == the per-row integer dot product (sc_qdot_get
 *     plain C, the same 8-bit activations: what SC_QMM_INT and llama.cpp
 *     compute) within the float accumulation, 1e-5 x sum_b |isum_b d_w d_x|
 *     (the integer block sums are exact in both; one fma per block against
 *     a multiply and an add);
 *  5. sc_qmatmul(SC_QMM_INT_VNNI) == sc_qmatmul(SC_QMM_INT) within the same
 *     bound, for Q5_0, Q8_0, Q4_0, a mixed call (Q5_0 + Q8_0, as Gemma's
 *     Q/K/V), 1 and 2 threads; a type without a tile (Q4_K) gives the bits
 *     of the bfloat16 (or float) path it falls back to; segments in one call
 *     == each segment alone, bit for bit.
 * A kernel that drops the offset, a block, a scale or a token fails 3-5. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/util.h"
#include "lm/gguf.h"
#include "lm/qmatmul.h"
#include "lm/quant.h"
#include "lm/safetensors.h"

static const int types[3] = {SC_GGML_Q5_0, SC_GGML_Q8_0, SC_GGML_Q4_0};

/* an fp16 scale 2^(lo..lo+3) with a random mantissa and sign */
static uint16_t scale_f16(sc_rng *r, int lo) {
    return (uint16_t)(sc_rng_below(r, 2) << 15 | (15 + lo + (int)sc_rng_below(r, 4)) << 10 | sc_rng_below(r, 1024));
}

/* OC x IC random weights of a 32-block type; every 7th block's scale 0 */
static sc_qtensor random_matrix(int type, int OC, int IC, sc_rng *r) {
    int ts = sc_ggml_type_size(type);
    size_t rb = (size_t)IC / 32 * ts;
    uint8_t *wd = malloc(rb * OC);
    for (size_t i = 0; i < rb * OC; i++) wd[i] = (uint8_t)sc_rng_below(r, 256);
    for (size_t b = 0; b < rb * OC / ts; b++) {
        uint16_t h = b % 7 == 3 ? 0 : scale_f16(r, -7);
        memcpy(wd + b * ts, &h, 2);
    }
    return (sc_qtensor){type, OC, IC, rb, wd};
}

static void random_x(float *x, size_t n, sc_rng *r) {
    for (size_t i = 0; i < n; i++) x[i] = sc_rng_normal(r) * (i % 96 < 32 ? 1.0f : i % 96 < 64 ? 0.01f : 30.0f);
}

Test(lm_i8tile, unpack_equals_dequant) {
    sc_rng r;
    sc_rng_seed(&r, 31);
    int OC = 9, IC = 320, NB = IC / 32;
    for (int ti = 0; ti < 3; ti++) {
        sc_qtensor w = random_matrix(types[ti], OC, IC, &r);
        uint8_t *u = malloc((size_t)OC * IC);
        float *d = malloc((size_t)OC * NB * 4), *ref = malloc((size_t)IC * 4);
        int off = sc_i8_unpack(&w, 2, OC - 2, u, d); /* from row 2: r0 is honoured */
        cr_assert_eq(off, types[ti] == SC_GGML_Q8_0 ? 128 : types[ti] == SC_GGML_Q4_0 ? 8 : 16);
        for (int rr = 0; rr < OC - 2; rr++) {
            sc_qtensor_row(&w, 2 + rr, ref);
            for (int k = 0; k < IC; k++) {
                float v = (float)((int)u[(size_t)rr * IC + k] - off) * d[(size_t)rr * NB + k / 32];
                cr_assert(v == ref[k] || (v == 0 && ref[k] == 0), "%s row %d [%d]: %g vs %g",
                          sc_ggml_type_name(types[ti]), rr, k, v, ref[k]);
            }
        }
        free((void *)w.data); free(u); free(d); free(ref);
    }
}

Test(lm_i8tile, pack_layout) {
    sc_rng r;
    sc_rng_seed(&r, 37);
    int T = 21, IC = 192, NB = IC / 32;
    float *x = malloc((size_t)T * IC * 4);
    random_x(x, (size_t)T * IC, &r);
    void *buf = sc_aligned_alloc(sc_i8_pack_bytes(T, IC));
    uint8_t *qb = sc_aligned_alloc(sc_qact_bytes(SC_GGML_Q8_0, IC));
    sc_i8_act a;
    sc_i8_pack(x, T, IC, buf, &a);
    cr_assert(a.T == T && a.IC == IC && a.G == 2 && a.NB == NB);
    for (int t = 0; t < 32; t++) {
        sc_qrow q;
        if (t < T) sc_qact_quantize(SC_GGML_Q8_0, x + (size_t)t * IC, IC, qb, &q);
        int g = t / 16, l = t % 16;
        for (int k = 0; k < IC; k++)
            cr_assert_eq(a.q[(size_t)g * IC * 16 + (size_t)(k / 4) * 64 + 4 * l + k % 4], t < T ? q.qs[k] : 0, "t %d k %d", t, k);
        for (int b = 0; b < NB; b++) {
            int s = 0;
            for (int k = 0; t < T && k < 32; k++) s += q.qs[32 * b + k];
            cr_assert_eq(a.d[((size_t)g * NB + b) * 16 + l], t < T ? q.d[b] : 0.0f);
            cr_assert_eq(a.s[((size_t)g * NB + b) * 16 + l], s);
        }
    }
    free(x); sc_free(buf); sc_free(qb);
}

Test(lm_i8tile, tile_kernel_avx512_equals_plain) {
    sc_i8_tile_fn fast = sc_i8_tile_get(SC_ISA_AVX512), plain = sc_i8_tile_get(SC_ISA_PLAIN);
    if (!fast) cr_skip_test("this CPU has no AVX512_VNNI: prompts use the plain C integer tile");
    sc_rng r;
    sc_rng_seed(&r, 41);
    int Ts[] = {1, 2, 15, 16, 17, 48, 63, 64, 65, 100, 257, 300}, Rs[] = {1, 2, 3, 4, 5, 7, 12, 16, 17, 33, 48, 50, 96, 100};
    int IC = 288, NB = IC / 32;
    for (size_t ti = 0; ti < sizeof Ts / sizeof *Ts; ti++)
        for (size_t ri = 0; ri < sizeof Rs / sizeof *Rs; ri++) {
            int T = Ts[ti], R = Rs[ri], type = types[(ti + ri) % 3];
            sc_qtensor w = random_matrix(type, R, IC, &r);
            float *x = malloc((size_t)T * IC * 4), *d = malloc((size_t)R * NB * 4);
            float *o1 = malloc((size_t)T * (R + 3) * 4), *o2 = malloc((size_t)T * (R + 3) * 4);
            uint8_t *u = malloc((size_t)R * IC);
            random_x(x, (size_t)T * IC, &r);
            void *buf = sc_aligned_alloc(sc_i8_pack_bytes(T, IC));
            sc_i8_act a;
            sc_i8_pack(x, T, IC, buf, &a);
            int off = sc_i8_unpack(&w, 0, R, u, d);
            for (int i = 0; i < T * (R + 3); i++) o1[i] = o2[i] = -7.0f; /* ldo R + 3: the gaps stay */
            fast(&a, u, d, off, R, o1, (size_t)R + 3);
            plain(&a, u, d, off, R, o2, (size_t)R + 3);
            for (int i = 0; i < T * (R + 3); i++)
                cr_assert_eq(memcmp(&o1[i], &o2[i], 4), 0, "%s T %d R %d [%d][%d]: %.9g vs %.9g", sc_ggml_type_name(type), T, R,
                             i / (R + 3), i % (R + 3), o1[i], o2[i]);
            free((void *)w.data); free(x); free(d); free(o1); free(o2); free(u); sc_free(buf);
        }
}

/* bound of 4./5.: 1e-5 sum_b |isum_b d_w d_x| over weight row o, activation t */
static double block_bound(const sc_qtensor *w, int o, const sc_qrow *q, int IC) {
    float *wf = malloc((size_t)IC * 4);
    sc_qtensor_row(w, o, wf);
    double s = 0;
    for (int k = 0; k < IC; k++) s += fabs((double)wf[k] * q->qs[k] * q->d[k / 32]);
    free(wf);
    return 1e-5 * s + 1e-30;
}

Test(lm_i8tile, plain_kernel_equals_row_dot) {
    sc_rng r;
    sc_rng_seed(&r, 43);
    int T = 19, R = 11, IC = 416, NB = IC / 32;
    for (int ti = 0; ti < 3; ti++) {
        sc_qtensor w = random_matrix(types[ti], R, IC, &r);
        float *x = malloc((size_t)T * IC * 4), *d = malloc((size_t)R * NB * 4), *o = malloc((size_t)T * R * 4);
        uint8_t *u = malloc((size_t)R * IC), *qb = sc_aligned_alloc(sc_qact_bytes(SC_GGML_Q8_0, IC));
        random_x(x, (size_t)T * IC, &r);
        void *buf = sc_aligned_alloc(sc_i8_pack_bytes(T, IC));
        sc_i8_act a;
        sc_i8_pack(x, T, IC, buf, &a);
        int off = sc_i8_unpack(&w, 0, R, u, d);
        sc_i8_tile_get(SC_ISA_PLAIN)(&a, u, d, off, R, o, (size_t)R);
        sc_qdot_fn dot = sc_qdot_get(types[ti], SC_ISA_PLAIN);
        for (int t = 0; t < T; t++) {
            sc_qrow q;
            sc_qact_quantize(SC_GGML_Q8_0, x + (size_t)t * IC, IC, qb, &q);
            for (int j = 0; j < R; j++) {
                float want = dot(w.data + (size_t)j * w.row_bytes, &q, IC);
                cr_assert_leq(fabs(o[t * R + j] - want), block_bound(&w, j, &q, IC), "%s [%d][%d]: %.9g vs %.9g",
                              sc_ggml_type_name(types[ti]), t, j, o[t * R + j], want);
            }
        }
        free((void *)w.data); free(x); free(d); free(o); free(u); sc_free(qb); sc_free(buf);
    }
}

Test(lm_i8tile, qmatmul_vnni_equals_int) {
    sc_rng r;
    sc_rng_seed(&r, 47);
    int OC = 200, IC = 640, T = 37; /* OC, T: not multiples of the tiles */
    uint8_t *qb = sc_aligned_alloc(sc_qact_bytes(SC_GGML_Q8_0, IC));
    for (int threads = 1; threads <= 2; threads++) {
        sc_pool *pool = threads > 1 ? sc_pool_new(threads) : NULL;
        for (int ti = 0; ti < 4; ti++) { /* 3: Q5_0 and Q8_0 in one call */
            int n = ti == 3 ? 2 : 1;
            sc_qtensor w[2] = {random_matrix(ti == 3 ? SC_GGML_Q5_0 : types[ti], OC, IC, &r),
                               random_matrix(SC_GGML_Q8_0, OC / 2, IC, &r)};
            float *x = malloc((size_t)T * IC * 4), *got[2], *want[2];
            random_x(x, (size_t)T * IC, &r);
            for (int k = 0; k < 2; k++) {
                got[k] = malloc((size_t)T * OC * 4);
                want[k] = malloc((size_t)T * OC * 4);
            }
            const sc_qtensor *ws[2] = {&w[0], &w[1]};
            sc_error e;
            cr_assert_eq(sc_qmatmul(n, got, ws, x, T, pool, SC_QMM_INT_VNNI, &e), SC_OK, "%s", e.msg);
            cr_assert_eq(sc_qmatmul(n, want, ws, x, T, pool, SC_QMM_INT, &e), SC_OK, "%s", e.msg);
            for (int t = 0; t < T; t++) {
                sc_qrow q;
                sc_qact_quantize(SC_GGML_Q8_0, x + (size_t)t * IC, IC, qb, &q);
                for (int k = 0; k < n; k++)
                    for (int o = 0; o < ws[k]->rows; o++) {
                        float g = got[k][(size_t)t * ws[k]->rows + o], v = want[k][(size_t)t * ws[k]->rows + o];
                        cr_assert_leq(fabs(g - v), block_bound(ws[k], o, &q, IC), "%s, %d threads [%d][%d]: %.9g vs %.9g",
                                      sc_ggml_type_name(ws[k]->type), threads, t, o, g, v);
                    }
            }
            for (int k = 0; k < 2; k++) {
                free((void *)w[k].data); free(got[k]); free(want[k]);
            }
            free(x);
        }
        sc_pool_free(pool);
    }
    sc_free(qb);
}

Test(lm_i8tile, other_types_fall_back) {
    sc_rng r;
    sc_rng_seed(&r, 53);
    int OC = 40, IC = 512, T = 20;
    int ts = sc_ggml_type_size(SC_GGML_Q4_K);
    size_t rb = (size_t)IC / 256 * ts;
    uint8_t *wd = malloc(rb * OC);
    for (size_t i = 0; i < rb * OC; i++) wd[i] = (uint8_t)sc_rng_below(&r, 256);
    for (size_t b = 0; b < rb * OC / ts; b++) {
        uint16_t h[2] = {scale_f16(&r, -7), scale_f16(&r, -8)};
        memcpy(wd + b * ts, h, 4);
    }
    sc_qtensor w = {SC_GGML_Q4_K, OC, IC, rb, wd};
    float *x = malloc((size_t)T * IC * 4), *a = malloc((size_t)T * OC * 4), *b = malloc((size_t)T * OC * 4);
    random_x(x, (size_t)T * IC, &r);
    const sc_qtensor *ws[1] = {&w};
    sc_error e;
    cr_assert_eq(sc_qmatmul(1, &a, ws, x, T, NULL, SC_QMM_INT_VNNI, &e), SC_OK, "%s", e.msg);
    cr_assert_eq(sc_qmatmul(1, &b, ws, x, T, NULL, sc_cpu_has_bf16() ? SC_QMM_INT_BF16 : SC_QMM_INT_SGEMM, &e), SC_OK);
    cr_assert_eq(memcmp(a, b, (size_t)T * OC * 4), 0);
    free(wd); free(x); free(a); free(b);
}

Test(lm_i8tile, segments_equal_separate_calls) {
    sc_rng r;
    sc_rng_seed(&r, 59);
    int OC = 100, IC = 256;
    int seg[7] = {0, 1, 18, 19, 53, 54, 70}; /* lengths 1, 17, 1, 34, 1, 16: per-row and tile segments */
    int T = seg[6];
    sc_pool *pool = sc_pool_new(2);
    sc_qtensor w = random_matrix(SC_GGML_Q5_0, OC, IC, &r);
    float *x = malloc((size_t)T * IC * 4), *want = malloc((size_t)T * OC * 4), *got = malloc((size_t)T * OC * 4);
    random_x(x, (size_t)T * IC, &r);
    const sc_qtensor *ws[1] = {&w};
    sc_error e;
    for (int s = 0; s < 6; s++) {
        float *o[1] = {want + (size_t)seg[s] * OC};
        cr_assert_eq(sc_qmatmul(1, o, ws, x + (size_t)seg[s] * IC, seg[s + 1] - seg[s], pool, SC_QMM_INT_VNNI, &e), SC_OK);
    }
    float *o[1] = {got};
    cr_assert_eq(sc_qmatmul_seg(1, o, ws, x, seg, 6, pool, SC_QMM_INT_VNNI, &e), SC_OK, "%s", e.msg);
    for (int i = 0; i < T * OC; i++)
        cr_assert_eq(memcmp(&got[i], &want[i], 4), 0, "[%d, %d]: %g vs %g", i / OC, i % OC, got[i], want[i]);
    free((void *)w.data); free(x); free(want); free(got);
    sc_pool_free(pool);
}

/* The activation quantiser (AVX2 where the CPU has it) == ggml's formula in
 * plain C bit for bit: amax, q = nearbyint(x * 127 / amax), d = fp16(amax /
 * 127), Q8_1's s = fp16(d * sum q); blocks of zeros, exact ties (x * 127 /
 * amax = k + 0.5) and signed zeros included. */
Test(lm_i8tile, activation_quantiser_equals_formula) {
    sc_rng r;
    sc_rng_seed(&r, 61);
    int IC = 32 * 40;
    float *x = malloc((size_t)IC * 4);
    uint8_t *buf = sc_aligned_alloc(sc_qact_bytes(SC_GGML_Q8_1, IC));
    for (int rep = 0; rep < 50; rep++) {
        random_x(x, (size_t)IC, &r);
        for (int k = 0; k < 32; k++) x[32 * 3 + k] = k % 2 ? 0.0f : -0.0f; /* a zero block */
        for (int k = 0; k < 32; k++) x[32 * 5 + k] = (float)(k - 16) + 0.5f; /* amax 15.5 */
        x[32 * 7] = 127.0f;
        for (int k = 1; k < 32; k++) x[32 * 7 + k] = (float)(k - 16) + 0.5f; /* id 1: ties to even */
        for (int at = 0; at < 2; at++) {
            int atype = at ? SC_GGML_Q8_1 : SC_GGML_Q8_0;
            sc_qrow q;
            sc_qact_quantize(atype, x, IC, buf, &q);
            for (int b = 0; b < IC / 32; b++) {
                float amax = 0;
                for (int k = 0; k < 32; k++) amax = fmaxf(amax, fabsf(x[32 * b + k]));
                float id = amax != 0 ? 127.f / amax : 0.f;
                int sum = 0;
                for (int k = 0; k < 32; k++) {
                    int8_t v = (int8_t)nearbyintf(x[32 * b + k] * id);
                    cr_assert_eq(q.qs[32 * b + k], v, "block %d [%d]: %g -> %d vs %d", b, k, x[32 * b + k], q.qs[32 * b + k], v);
                    sum += v;
                }
                float db = amax / 127.f;
                cr_assert_eq(q.d[b], sc_f16_to_f32(sc_f16_of(db)));
                cr_assert_eq(q.s[b], at ? sc_f16_to_f32(sc_f16_of(db * (float)sum)) : 0.0f);
            }
        }
    }
    free(x);
    sc_free(buf);
}

/* fp16 rows (the F16 KV cache): F16C rounding == sc_f16_of bit for bit
 * (ties, subnormals, overflow, signed zero; n not a multiple of 8), and
 * widening is exact. */
Test(lm_i8tile, f16_rows_equal_plain) {
    sc_rng r;
    sc_rng_seed(&r, 67);
    enum { N = 1003 };
    float x[N], back[N];
    uint16_t h[N];
    for (int i = 0; i < N; i++) {
        uint32_t u = (uint32_t)sc_rng_below(&r, 0x7f800000u) | (uint32_t)sc_rng_below(&r, 2) << 31;
        memcpy(&x[i], &u, 4);
        if (i % 3 == 0) x[i] = sc_rng_normal(&r) * 100.0f;
    }
    float edge[] = {0.0f, -0.0f, 65504.0f, 65519.99f, 65520.0f, 1e-8f, 5.9604645e-08f, 2.9802322e-08f, 1.0009766f,
                    1.00048828125f, 1.00146484375f, -3.0517578e-05f};
    memcpy(x, edge, sizeof edge);
    sc_f16_round(x, N, h);
    for (int i = 0; i < N; i++) cr_assert_eq(h[i], sc_f16_of(x[i]), "[%d] %g: %04x vs %04x", i, x[i], h[i], sc_f16_of(x[i]));
    sc_f16_widen(h, N, back);
    for (int i = 0; i < N; i++) cr_assert_eq(memcmp(&back[i], &(float){sc_f16_to_f32(h[i])}, 4), 0, "[%d]", i);
}
