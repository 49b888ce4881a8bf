/* lm: dot products on quantised blocks (lm/qmatmul.h).
 *
 * For every weight type, on random blocks and on rows of the real SmolLM2
 * tensors, and for every instruction set the CPU has (plain C, AVX2,
 * AVX-512):
 *  1. SIMD == plain C within 1e-5 * S, S = sum_i |w_i * xq_i|: the integer
 *     block sums are exact in both, only the float accumulation order
 *     differs (and float kernels: FMA vs separate multiply-add).
 *  2. plain C == the double-precision dot of the dequantised weight row and
 *     the dequantised activation row, within 1e-5 * S (+ the fp16 rounding
 *     of Q8_1's block sums s: 2^-11 * sum_b |m_b * s_b| for Q4_1).
 *  3. plain C == the float dot of the dequantised weights with the
 *     unquantised activations x within the activation quantisation bound
 *     sum_i |w_i| * (d_b / 2 + 127 * d_b * 2^-11) + 1e-5 * S, d_b the block's
 *     activation scale (half a step of rounding, plus the fp16 rounding of d).
 * And sc_qmatmul (integer and sgemm paths, T = 1 and T > 1, 1 and 2 threads)
 * equals the row-by-row dot products; bad tensors are rejected by name. */
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
#include "test_gguf_util.h"

static const int TYPES[] = {SC_GGML_F32, SC_GGML_F16, SC_GGML_BF16, SC_GGML_Q8_0, SC_GGML_Q4_0,
                            SC_GGML_Q4_1, SC_GGML_Q5_0, SC_GGML_Q5_1, SC_GGML_Q4_K, SC_GGML_Q5_K, SC_GGML_Q6_K};
#define NTYPES (int)(sizeof TYPES / sizeof *TYPES)

/* fp16 bits of a positive value around 2^e (mantissa random) */
static uint16_t rand_f16(sc_rng *r, int e, int neg) {
    return (uint16_t)((neg ? 0x8000 : 0) | ((uint16_t)(e + 15) << 10) | (uint16_t)sc_rng_below(r, 1024));
}

/* random but well-formed row of n elements of type: finite scales */
static void random_row(int type, int n, uint8_t *w, sc_rng *r) {
    int bs = sc_ggml_block_size(type), ts = sc_ggml_type_size(type);
    for (int i = 0; i < n / bs * ts; i++) w[i] = (uint8_t)sc_rng_below(r, 256);
    for (int b = 0; b < n / bs; b++) {
        uint8_t *blk = w + (size_t)b * ts;
        uint16_t h[2] = {rand_f16(r, -7, 0), rand_f16(r, -6, (int)sc_rng_below(r, 2))};
        switch (type) {
        case SC_GGML_F32: {
            float v = sc_rng_normal(r);
            memcpy(blk, &v, 4);
            break;
        }
        case SC_GGML_F16: h[0] = rand_f16(r, (int)sc_rng_below(r, 4) - 2, (int)sc_rng_below(r, 2)); memcpy(blk, h, 2); break;
        case SC_GGML_BF16: {
            float v = sc_rng_normal(r);
            uint32_t u;
            memcpy(&u, &v, 4);
            uint16_t hb = (uint16_t)(u >> 16);
            memcpy(blk, &hb, 2);
            break;
        }
        case SC_GGML_Q8_0: case SC_GGML_Q4_0: case SC_GGML_Q5_0: memcpy(blk, h, 2); break;
        case SC_GGML_Q4_1: case SC_GGML_Q5_1: case SC_GGML_Q4_K: case SC_GGML_Q5_K: h[1] &= 0x7fff; memcpy(blk, h, 4); break;
        case SC_GGML_Q6_K: memcpy(blk + 208, h, 2); break;
        default: break;
        }
    }
}

/* the activation row's values as the dot products see them */
static void dequant_act(int atype, const sc_qrow *a, int n, float *xq, float *dscale) {
    int bs = atype == SC_GGML_Q8_K ? 256 : 32;
    for (int i = 0; i < n; i++) {
        if (atype == SC_GGML_F32) {
            xq[i] = a->f[i];
            dscale[i] = 0;
        } else {
            xq[i] = a->qs[i] * a->d[i / bs];
            dscale[i] = a->d[i / bs];
        }
    }
}

/* checks 1-3 on one weight row w of type, activations x */
static void check_row(int type, const uint8_t *w, const float *x, int n, const char *what) {
    int atype = sc_qact_type(type);
    uint8_t *buf = sc_aligned_alloc(sc_qact_bytes(atype, n) + 64);
    float *wf = malloc((size_t)n * 4), *xq = malloc((size_t)n * 4), *ds = malloc((size_t)n * 4);
    sc_qrow a;
    sc_qact_quantize(atype, x, n, buf, &a);
    sc_error e;
    cr_assert_eq(sc_dequant(type, w, wf, (size_t)n, what, &e), SC_OK, "%s", e.msg);
    dequant_act(atype, &a, n, xq, ds);
    double exact = 0, S = 0, fdot = 0, qbound = 0;
    for (int i = 0; i < n; i++) {
        exact += (double)wf[i] * xq[i];
        S += fabs((double)wf[i] * xq[i]);
        fdot += (double)wf[i] * x[i];
        qbound += fabs(wf[i]) * (fabs(ds[i]) / 2 + (atype == SC_GGML_Q8_K ? 0 : 127 * fabs(ds[i]) / 2048));
    }
    double tol_s = 1e-5 * S + 1e-30;
    if (type == SC_GGML_Q4_1 || type == SC_GGML_Q5_1) { /* + a block's m * s, where s is fp16-rounded */
        for (int b = 0; b < n / 32; b++) {
            uint16_t mh;
            memcpy(&mh, w + (size_t)b * (type == SC_GGML_Q4_1 ? 20 : 24) + 2, 2);
            int sum = 0;
            for (int j = 0; j < 32; j++) sum += a.qs[b * 32 + j];
            tol_s += fabs((double)sc_f16_to_f32(mh)) * fabs((double)a.d[b] * sum) / 2048;
        }
    }
    float plain = sc_qdot_get(type, SC_ISA_PLAIN)(w, &a, n);
    cr_assert(fabs(plain - exact) <= tol_s, "%s %s: plain %.9g vs dequantised %.9g (tol %.3g)", what,
              sc_ggml_type_name(type), plain, exact, tol_s);
    cr_assert(fabs(plain - fdot) <= qbound + tol_s, "%s %s: plain %.9g vs float %.9g beyond the quantisation bound %.3g",
              what, sc_ggml_type_name(type), plain, fdot, qbound + tol_s);
    for (int isa = 1; isa < SC_ISA_N; isa++) {
        sc_qdot_fn f = sc_qdot_get(type, isa);
        if (!f) continue;
        float v = f(w, &a, n);
        cr_assert(fabs(v - plain) <= 1e-5 * S + 1e-30, "%s %s: %s %.9g vs plain C %.9g", what, sc_ggml_type_name(type),
                  sc_isa_name(isa), v, plain);
    }
    sc_free(buf);
    free(wf);
    free(xq);
    free(ds);
}

Test(lm_qdot, random_blocks_every_type_and_isa) {
    sc_rng r;
    sc_rng_seed(&r, 42);
    /* 96 = 3 blocks of 32 (an odd count: the AVX-512 kernels' tail), 512 = 2 K-blocks */
    int sizes[] = {96, 256, 512, 1536};
    for (int ti = 0; ti < NTYPES; ti++) {
        int type = TYPES[ti];
        for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
            int n = sizes[si];
            if (n % sc_ggml_block_size(type)) continue;
            uint8_t *w = malloc((size_t)n / sc_ggml_block_size(type) * sc_ggml_type_size(type));
            float *x = malloc((size_t)n * 4);
            for (int rep = 0; rep < 20; rep++) {
                random_row(type, n, w, &r);
                /* activations of mixed magnitude; every 7th rep has a zero block */
                for (int i = 0; i < n; i++) x[i] = sc_rng_normal(&r) * (i % 64 < 32 ? 1.0f : 0.01f);
                if (rep % 7 == 3) memset(x, 0, 256 * sizeof(float) < (size_t)n * 4 ? 256 * sizeof(float) : (size_t)n * 4);
                check_row(type, w, x, n, "random");
            }
            free(w);
            free(x);
        }
    }
    int have = 0;
    for (int isa = 0; isa < SC_ISA_N; isa++) have += sc_isa_available(isa);
    fprintf(stderr, "qdot: %d instruction sets available (%s%s%s)%s\n", have, sc_isa_name(0),
            sc_isa_available(1) ? ", AVX2" : "", sc_isa_available(2) ? ", AVX-512" : "",
            sc_cpu_has_vnni() ? ", integer kernels with VNNI" : "");
}

Test(lm_qdot, real_smollm2_tensors, .timeout = 60) {
    sc_gguf g;
    sc_error e;
    cr_assert_eq(sc_gguf_open(&g, ggt_model_path(), &e), SC_OK, "%s", e.msg);
    const char *names[] = {"token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.29.ffn_down.weight",
                           "blk.15.ffn_gate.weight"};
    sc_rng r;
    sc_rng_seed(&r, 7);
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        const sc_gguf_tensor *t = sc_gguf_tensor_find(&g, names[k]);
        cr_assert(t, "%s missing", names[k]);
        sc_qtensor w;
        cr_assert_eq(sc_qtensor_from_gguf(&w, t, g.name, &e), SC_OK, "%s", e.msg);
        float *x = malloc((size_t)w.cols * 4);
        /* activations shaped like a real hidden state: a few large outliers */
        for (int i = 0; i < w.cols; i++) x[i] = sc_rng_normal(&r) * (i % 97 == 5 ? 20.0f : 1.0f);
        for (int row = 0; row < w.rows; row += w.rows / 40) check_row(w.type, w.data + (size_t)row * w.row_bytes, x, w.cols, names[k]);
        free(x);
    }
    sc_gguf_close(&g);
}

/* a random [OC, IC] weight matrix of type (data malloc'ed) */
static sc_qtensor random_matrix(int type, int OC, int IC, sc_rng *r) {
    size_t rb = (size_t)IC / sc_ggml_block_size(type) * sc_ggml_type_size(type);
    uint8_t *wd = malloc(rb * OC);
    for (int o = 0; o < OC; o++) random_row(type, IC, wd + o * rb, r);
    return (sc_qtensor){type, OC, IC, rb, wd};
}

/* sc_qmatmul against the per-row kernels and the float reference */
Test(lm_qdot, qmatmul_paths_and_threads) {
    sc_rng r;
    sc_rng_seed(&r, 3);
    int OC = 70, IC = 512; /* OC not a multiple of any tile */
    int types[] = {SC_GGML_Q4_1, SC_GGML_Q5_0, SC_GGML_Q8_0, SC_GGML_Q6_K, SC_GGML_F16};
    sc_pool *pool = sc_pool_new(2);
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
        int type = types[ti];
        sc_qtensor w = random_matrix(type, OC, IC, &r);
        uint8_t *wd = (uint8_t *)w.data;
        size_t rb = w.row_bytes;
        int T = 67;
        float *x = malloc((size_t)T * IC * 4), *want = malloc((size_t)T * OC * 4), *got = malloc((size_t)T * OC * 4);
        float *wf = malloc((size_t)OC * IC * 4);
        for (int i = 0; i < T * IC; i++) x[i] = sc_rng_normal(&r);
        for (int o = 0; o < OC; o++) sc_qtensor_row(&w, o, wf + (size_t)o * IC);
        int atype = sc_qact_type(type);
        uint8_t *buf = sc_aligned_alloc(sc_qact_bytes(atype, IC) + 64);
        for (int t = 0; t < T; t++) {
            sc_qrow a;
            sc_qact_quantize(atype, x + (size_t)t * IC, IC, buf, &a);
            for (int o = 0; o < OC; o++) want[t * OC + o] = sc_qdot_best(type)(wd + o * rb, &a, IC);
        }
        sc_free(buf);
        const sc_qtensor *ws[1] = {&w};
        sc_error e;
        for (int th = 0; th < 2; th++) {
            sc_pool *p = th ? pool : NULL;
            for (int Tn = 1; Tn <= T; Tn += T - 1) {
                float *outs[1] = {got};
                cr_assert_eq(sc_qmatmul(1, outs, ws, x, Tn, p, SC_QMM_INT, &e), SC_OK, "%s", e.msg);
                for (int i = 0; i < Tn * OC; i++) cr_assert_eq(got[i], want[i], "%s T=%d int [%d]", sc_ggml_type_name(type), Tn, i);
                cr_assert_eq(sc_qmatmul(1, outs, ws, x, Tn, p, SC_QMM_SGEMM, &e), SC_OK, "%s", e.msg);
                for (int t = 0; t < Tn; t++)
                    for (int o = 0; o < OC; o++) {
                        double ref = 0, S = 0;
                        for (int i = 0; i < IC; i++) {
                            ref += (double)wf[o * IC + i] * x[t * IC + i];
                            S += fabs((double)wf[o * IC + i] * x[t * IC + i]);
                        }
                        cr_assert(fabs(got[t * OC + o] - ref) <= 1e-5 * S, "%s T=%d sgemm [%d,%d]: %g vs %g",
                                  sc_ggml_type_name(type), Tn, t, o, got[t * OC + o], ref);
                    }
            }
        }
        /* two weights sharing one input in one call */
        float *got2 = malloc((size_t)T * OC * 4);
        float *outs2[2] = {got, got2};
        const sc_qtensor *ws2[2] = {&w, &w};
        cr_assert_eq(sc_qmatmul(2, outs2, ws2, x, T, pool, SC_QMM_INT, &e), SC_OK);
        cr_assert_eq(memcmp(got, want, (size_t)T * OC * 4), 0);
        cr_assert_eq(memcmp(got2, want, (size_t)T * OC * 4), 0);
        free(got2);
        free(wd); free(x); free(want); free(got); free(wf);
    }
    sc_pool_free(pool);
}

/* the 4-row kernels give each row the single-row kernel's bits: each isa's
 * against that isa's single-row kernel, and sc_qdot4_best against
 * sc_qdot_best, on random rows and activations (some with a zero block) */
static void check_four_rows(int type, sc_qdot4_fn dot4, sc_qdot_fn dot, const char *what, sc_rng *r) {
    int bs = sc_ggml_block_size(type);
    /* 32-blocks: 1 and 3 (odd: the AVX-512 kernels' tail), 8 blocks;
     * K-quants: 1 and 2 blocks */
    int ns[] = {32, 96, 256, 512};
    for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++) {
        int n = ns[ni];
        if (n % bs || (bs == 32 && n == 512)) continue;
        size_t rb = (size_t)n / bs * sc_ggml_type_size(type);
        int atype = sc_qact_type(type);
        size_t ab = (sc_qact_bytes(atype, n) + 63) & ~(size_t)63;
        uint8_t *w = malloc(rb), *buf = sc_aligned_alloc(4 * ab);
        float *x = malloc((size_t)n * 4), got[4];
        for (int rep = 0; rep < 8; rep++) {
            random_row(type, n, w, r);
            sc_qrow a[4];
            for (int k = 0; k < 4; k++) {
                for (int i = 0; i < n; i++) x[i] = sc_rng_normal(r) * (float)(k + 1) * (i % 64 < 32 ? 1.0f : 0.01f);
                if (rep % 4 == 1 && k == rep % 3) memset(x, 0, (size_t)bs * 4);
                sc_qact_quantize(atype, x, n, buf + k * ab, &a[k]);
            }
            dot4(w, a, n, got);
            for (int k = 0; k < 4; k++) {
                float want = dot(w, &a[k], n);
                cr_assert(memcmp(&got[k], &want, 4) == 0, "%s %s n=%d rep %d row %d: %.9g vs %.9g", what,
                          sc_ggml_type_name(type), n, rep, k, got[k], want);
            }
        }
        free(w); free(x);
        sc_free(buf);
    }
}

Test(lm_qdot, four_row_kernels_equal_single_rows) {
    sc_rng r;
    sc_rng_seed(&r, 8);
    int checked = 0;
    for (int ti = 0; ti < NTYPES; ti++) {
        int type = TYPES[ti];
        for (int isa = 0; isa < SC_ISA_N; isa++) {
            sc_qdot4_fn dot4 = sc_qdot4_get(type, isa);
            if (!dot4) continue;
            cr_assert(sc_qdot_get(type, isa), "%s: a 4-row %s kernel without a single-row one", sc_ggml_type_name(type),
                      sc_isa_name(isa));
            check_four_rows(type, dot4, sc_qdot_get(type, isa), sc_isa_name(isa), &r);
            checked++;
        }
        sc_qdot4_fn best4 = sc_qdot4_best(type);
        if (best4) check_four_rows(type, best4, sc_qdot_best(type), "best", &r);
        /* every quantised type with SIMD kernels has a 4-row one mirroring
         * the best single-row kernel (Q5_1 has no SIMD kernel) */
        int quant = type != SC_GGML_F32 && type != SC_GGML_F16 && type != SC_GGML_BF16 && type != SC_GGML_Q5_1;
        if (quant && sc_isa_available(SC_ISA_AVX2))
            cr_assert(best4, "%s: no 4-row kernel on this CPU", sc_ggml_type_name(type));
    }
    fprintf(stderr, "qdot: %d 4-row kernels checked\n", checked);
}

/* segments in one call == each segment alone, bit for bit, whatever path
 * each takes (one row: integer products; several: a float tile + sgemm) */
Test(lm_qdot, qmatmul_segments_equal_separate_calls) {
    sc_rng r;
    sc_rng_seed(&r, 5);
    int OC = 150, IC = 256;
    int seg[10] = {0, 1, 8, 9, 42, 43, 44, 45, 46, 47}; /* lengths 1, 7, 1, 33, 1, 1, 1, 1, 1 */
    int T = seg[9];
    sc_pool *pool = sc_pool_new(2);
    int types[] = {SC_GGML_Q4_1, SC_GGML_Q8_0, SC_GGML_Q4_K, SC_GGML_Q5_0, SC_GGML_Q6_K};
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
        int type = types[ti];
        sc_qtensor w = random_matrix(type, OC, IC, &r);
        uint8_t *wd = (uint8_t *)w.data;
        float *x = malloc((size_t)T * IC * 4), *want = malloc((size_t)T * OC * 4), *got = malloc((size_t)T * OC * 4);
        for (int i = 0; i < T * IC; i++) x[i] = sc_rng_normal(&r);
        const sc_qtensor *ws[1] = {&w};
        sc_error e;
        for (int mode = SC_QMM_AUTO; mode <= SC_QMM_INT_SGEMM; mode++) {
            for (int s = 0; s < 9; s++) {
                float *o[1] = {want + (size_t)seg[s] * OC};
                cr_assert_eq(sc_qmatmul(1, o, ws, x + (size_t)seg[s] * IC, seg[s + 1] - seg[s], pool, mode, &e), SC_OK);
            }
            float *o[1] = {got};
            cr_assert_eq(sc_qmatmul_seg(1, o, ws, x, seg, 9, pool, mode, &e), SC_OK, "%s", e.msg);
            for (int i = 0; i < T * OC; i++)
                cr_assert_eq(got[i], want[i], "%s mode %d [%d, %d]: %g vs %g", sc_ggml_type_name(type), mode, i / OC, i % OC,
                             got[i], want[i]);
        }
        free(wd); free(x); free(want); free(got);
    }
    sc_pool_free(pool);
}

static void count_task(void *ctx, int i) { __atomic_add_fetch(&((int *)ctx)[i], 1, __ATOMIC_RELAXED); }

Test(lm_qdot, pool_runs_every_task_once) {
    for (int nt = 1; nt <= 3; nt++) {
        sc_pool *p = sc_pool_new(nt);
        cr_assert(p);
        cr_assert_eq(sc_pool_threads(p), nt);
        for (int rep = 0; rep < 200; rep++) {
            int n = rep % 37, hits[37] = {0};
            sc_pool_run(p, n, count_task, hits);
            for (int i = 0; i < n; i++) cr_assert_eq(hits[i], 1, "threads %d job %d task %d ran %d times", nt, rep, i, hits[i]);
        }
        sc_pool_free(p);
    }
}

Test(lm_qdot, rejects_bad_tensors) {
    static uint8_t data[4096];
    sc_gguf_tensor t = {.name = "blk.3.attn_q.weight", .ndim = 2, .ne = {100, 4, 1, 1}, .type = SC_GGML_Q4_1,
                        .nbytes = sizeof data, .data = data};
    sc_qtensor w;
    sc_error e;
    cr_assert_eq(sc_qtensor_from_gguf(&w, &t, "m.gguf", &e), SC_EFORMAT);
    cr_assert(strstr(e.msg, "blk.3.attn_q.weight") && strstr(e.msg, "block size") && strstr(e.msg, "m.gguf"), "%s", e.msg);
    t.type = SC_GGML_Q2_K;
    t.ne[0] = 256;
    cr_assert_eq(sc_qtensor_from_gguf(&w, &t, "m.gguf", &e), SC_EFORMAT);
    cr_assert(strstr(e.msg, "Q2_K"), "%s", e.msg);
    t.type = SC_GGML_Q8_0;
    t.ne[1] = 1000; /* more rows than bytes */
    cr_assert_eq(sc_qtensor_from_gguf(&w, &t, "m.gguf", &e), SC_EFORMAT);
    cr_assert(strstr(e.msg, "bytes"), "%s", e.msg);
    t.ne[1] = 4;
    cr_assert_eq(sc_qtensor_from_gguf(&w, &t, "m.gguf", &e), SC_OK, "%s", e.msg);
    cr_assert(w.rows == 4 && w.cols == 256 && w.row_bytes == 8 * 34);
}

/* the SIMD tile dequantisers of the sgemm path are bit-equal to sc_dequant.
 * Blocks are random bytes (so the K-quants' packed 6-bit scales and mins take
 * every bit pattern, 0 and 63 included) with finite f16 scales; on some
 * blocks the scale and the min change sign or are zero (signed zeros must
 * come out the same too). */
sc_dequant_fn sc_dequant_avx2(int wtype); /* qdot_x86.c */

/* byte offsets of the f16 scale (and min, -1 where none) of a block of type */
static void f16_fields(int type, int *d, int *m) {
    *d = 0;
    *m = -1;
    switch (type) {
    case SC_GGML_Q4_1: case SC_GGML_Q5_1: case SC_GGML_Q4_K: case SC_GGML_Q5_K: *m = 2; break;
    case SC_GGML_Q6_K: *d = 208; break;
    case SC_GGML_Q8_0: case SC_GGML_Q4_0: case SC_GGML_Q5_0: break;
    default: *d = -1; break;
    }
}

Test(lm_qdot, tile_dequant_equals_sc_dequant) {
    sc_rng r;
    sc_rng_seed(&r, 11);
    for (int ti = 0; ti < NTYPES; ti++) {
        int type = TYPES[ti], IC = 512, OC = 9;
        size_t bs = (size_t)sc_ggml_block_size(type), ts = (size_t)sc_ggml_type_size(type);
        size_t rb = (size_t)IC / bs * ts;
        if (sc_isa_available(SC_ISA_AVX2) && (type == SC_GGML_Q4_K || type == SC_GGML_Q5_K || type == SC_GGML_Q6_K))
            cr_assert(sc_dequant_avx2(type) != NULL, "%s: no AVX2 tile dequantiser", sc_ggml_type_name(type));
        uint8_t *wd = malloc(rb * OC);
        float *a = malloc((size_t)OC * IC * 4), *b = malloc((size_t)OC * IC * 4);
        int fd, fm;
        f16_fields(type, &fd, &fm);
        for (int rep = 0; rep < 20; rep++) {
            for (int o = 0; o < OC; o++) random_row(type, IC, wd + o * rb, &r);
            for (size_t k = 0; fd >= 0 && k < rb * OC / ts; k++) {
                int f[2] = {fd, fm};
                for (int q = 0; q < 2 && f[q] >= 0; q++) {
                    uint8_t *h = wd + k * ts + f[q];
                    uint64_t c = sc_rng_below(&r, 6);
                    if (c < 2) { /* negative */
                        h[1] ^= 0x80;
                    } else if (c == 2) { /* +0 or -0 */
                        h[0] = 0;
                        h[1] = (uint8_t)(sc_rng_below(&r, 2) << 7);
                    }
                }
            }
            sc_qtensor w = {type, OC, IC, rb, wd};
            sc_error e;
            int r0 = rep % 3, n = OC - r0 - rep % 2;
            cr_assert_eq(sc_dequant(type, wd + (size_t)r0 * rb, a, (size_t)n * IC, "t", &e), SC_OK);
            sc_qtensor_dequant_rows(&w, r0, n, b);
            for (size_t i = 0; i < (size_t)n * IC; i++) {
                uint32_t ua, ub;
                memcpy(&ua, a + i, 4);
                memcpy(&ub, b + i, 4);
                cr_assert_eq(ua, ub, "%s rep %d element %zu: %08x (%g) vs %08x (%g)", sc_ggml_type_name(type), rep, i,
                             ua, a[i], ub, b[i]);
            }
        }
        free(wd); free(a); free(b);
    }
}

/* The VNNI variants (vpdpbusd in place of maddubs + madd(ones): Q8_0, Q4_0,
 * Q4_1 on AVX-512 and AVX2, Q5_0 on AVX2) give the same int32 sums, so the
 * same bits as the kernels they replace: on random rows, and on rows of
 * extreme bytes (0x80: Q8_0's -128, the sign trick's |x| = 128, pair sums
 * 2 * 128 * 127; 0xFF: nibbles 15, Q5_0's 15) with activations all +-127,
 * at several lengths (odd block counts: the AVX-512 kernels' AVX2 tail).
 * Each variant's 4-row kernel gives each row its single-row kernel's bits,
 * and sc_qdot_get picks the VNNI one. */
static void check_vnni_rows(int type, sc_qdot_fn plain, sc_qdot_fn vnni, const char *what, sc_rng *r) {
    int bs = sc_ggml_block_size(type), fd, fm;
    f16_fields(type, &fd, &fm);
    int ns[] = {32, 64, 96, 160, 256, 1536};
    for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++) {
        int n = ns[ni], atype = sc_qact_type(type);
        if (n % bs) continue;
        size_t ts = (size_t)sc_ggml_type_size(type), rb = (size_t)n / bs * ts;
        uint8_t *w = malloc(rb), *buf = sc_aligned_alloc(sc_qact_bytes(atype, n) + 64);
        float *x = malloc((size_t)n * 4);
        for (int rep = 0; rep < 24; rep++) {
            random_row(type, n, w, r);
            int extreme = rep % 4 == 3;
            if (extreme) {
                uint16_t h[2] = {0, 0}; /* a finite scale (and min) from random_row */
                memcpy(&h[0], w + fd, 2);
                if (fm >= 0) memcpy(&h[1], w + fm, 2);
                memset(w, rep % 8 == 3 ? 0x80 : 0xFF, rb);
                for (size_t k = 0; k < rb / ts; k++) {
                    memcpy(w + k * ts + fd, &h[0], 2);
                    if (fm >= 0) memcpy(w + k * ts + fm, &h[1], 2);
                }
            }
            for (int i = 0; i < n; i++) {
                float sign = (rep / 4) % 3 == 0 ? 1.0f : (rep / 4) % 3 == 1 ? -1.0f : (sc_rng_below(r, 2) ? 1.0f : -1.0f);
                x[i] = extreme ? sign : sc_rng_normal(r) * (i % 64 < 32 ? 1.0f : 0.01f);
            }
            if (rep % 6 == 1) memset(x, 0, (size_t)bs * 4);
            sc_qrow a;
            sc_qact_quantize(atype, x, n, buf, &a);
            float want = plain(w, &a, n), got = vnni(w, &a, n);
            cr_assert(memcmp(&got, &want, 4) == 0, "%s %s n=%d rep %d: VNNI %.9g vs %.9g", what, sc_ggml_type_name(type),
                      n, rep, got, want);
        }
        free(w); free(x);
        sc_free(buf);
    }
}

Test(lm_qdot, vnni_kernels_equal_maddubs_kernels) {
    if (!sc_cpu_has_vnni()) {
        cr_assert_null(sc_qdot_get_variant(SC_GGML_Q8_0, SC_ISA_AVX2, 1));
        fprintf(stderr, "qdot: no AVX512_VNNI on this CPU, VNNI kernels not checked\n");
        return;
    }
    sc_rng r;
    sc_rng_seed(&r, 13);
    int checked = 0;
    for (int ti = 0; ti < NTYPES; ti++) {
        int type = TYPES[ti];
        for (int isa = SC_ISA_AVX2; isa <= SC_ISA_AVX512; isa++) {
            sc_qdot_fn v = sc_qdot_get_variant(type, isa, 1), p = sc_qdot_get_variant(type, isa, 0);
            int want = type == SC_GGML_Q8_0 || type == SC_GGML_Q4_0 || type == SC_GGML_Q4_1 ||
                       (type == SC_GGML_Q5_0 && isa == SC_ISA_AVX2);
            cr_assert_eq(v != NULL, want, "%s %s: VNNI kernel %s", sc_ggml_type_name(type), sc_isa_name(isa),
                         v ? "unexpected" : "missing");
            cr_assert_eq(sc_qdot_get(type, isa), v ? v : p, "%s %s: sc_qdot_get does not pick the VNNI kernel",
                         sc_ggml_type_name(type), sc_isa_name(isa));
            if (!v) continue;
            cr_assert(p && v != p);
            check_vnni_rows(type, p, v, sc_isa_name(isa), &r);
            for (int vn = 0; vn < 2; vn++) {
                sc_qdot4_fn f4 = sc_qdot4_get_variant(type, isa, vn);
                cr_assert(f4, "%s %s: no 4-row kernel (vnni %d)", sc_ggml_type_name(type), sc_isa_name(isa), vn);
                check_four_rows(type, f4, vn ? v : p, vn ? "VNNI" : "maddubs", &r);
            }
            cr_assert_eq(sc_qdot4_get(type, isa), sc_qdot4_get_variant(type, isa, 1));
            checked++;
        }
    }
    fprintf(stderr, "qdot: %d VNNI kernels equal the maddubs ones, bit for bit\n", checked);
}
