/* Layers with forward and backward; see layers.h for the conventions.
 * Dimension letters: B batch, F fields, D embedding, C in, O out, K cross
 * width, A attention width, NH heads, W ids per row. */
#include "nn/layers.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "nn/gemm_mt.h"

#include <stdatomic.h>

/* threads for sc_gemm; OpenBLAS itself stays single-threaded (nn/gemm_mt.h) */
static atomic_int gemm_threads = 1;

void sc_nn_set_threads(int n_threads) {
    atomic_store_explicit(&gemm_threads, n_threads < 1 ? 1 : n_threads, memory_order_relaxed);
    openblas_set_num_threads(1);
}

void sc_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
             const float *Bm, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        /* BLAS leaves C untouched for K = 0 only when beta = 1; be explicit. */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(int64_t)i * ldc + j] *= beta;
        return;
    }
    sc_gemm_mt(atomic_load_explicit(&gemm_threads, memory_order_relaxed), ta, tb, M, N, K, alpha, A, lda, Bm,
               ldb, beta, C, ldc);
}

/* Split [0, n) into `tasks` contiguous chunks; chunk t is [*lo, *hi). */
static void chunk(int64_t n, int tasks, int t, int64_t *lo, int64_t *hi) {
    int64_t base = n / tasks, rem = n % tasks;
    *lo = t * base + (t < rem ? t : rem);
    *hi = *lo + base + (t < rem ? 1 : 0);
}

/* Chunks for per-sample parallel work: enough to use the threads, not so
 * many that tiny batches pay for thread start-up. */
static int n_chunks(int64_t n, int n_threads, int64_t min_per_chunk) {
    if (n_threads < 1) n_threads = 1;
    int64_t c = n / (min_per_chunk > 0 ? min_per_chunk : 1);
    if (c > n_threads) c = n_threads;
    if (c < 1) c = 1;
    return (int)c;
}

/* ---------------- linear ---------------- */

void sc_linear_forward(float *out, const float *inp, const float *weight, const float *bias, int B,
                       int C, int O) {
    if (bias) {
        for (int b = 0; b < B; b++) memcpy(out + (int64_t)b * O, bias, sizeof(float) * O);
        sc_gemm(0, 1, B, O, C, 1.0f, inp, C, weight, C, 1.0f, out, O);
    } else {
        sc_gemm(0, 1, B, O, C, 1.0f, inp, C, weight, C, 0.0f, out, O);
    }
}

/* ---------------- packed dense layer (inference) ---------------- */

int64_t sc_linear_packed_floats(int C, int O) {
    int64_t O16 = ((int64_t)O + 15) / 16 * 16;
    return O16 * C + O16;
}

int sc_linear_packed_same_as_blas(int B, int C, int O) { return (double)B * C * O > 1e6; }

void sc_linear_pack(float *packed, const float *W, const float *bias, int C, int O) {
    int NP = (O + 15) / 16;
    for (int p = 0; p < NP; p++)
        for (int c = 0; c < C; c++)
            for (int j = 0; j < 16; j++) {
                int o = p * 16 + j;
                packed[((int64_t)p * C + c) * 16 + j] = o < O ? W[(int64_t)o * C + c] : 0.0f;
            }
    float *pb = packed + (int64_t)NP * 16 * C;
    for (int o = 0; o < NP * 16; o++) pb[o] = bias && o < O ? bias[o] : 0.0f;
}

#if defined(__AVX512F__)
#include <immintrin.h>

/* R rows x NP panels of 16 outputs starting at panel p0: the accumulators
 * stay in registers over all of C. R and NP are constants at every call
 * (always_inline), so the loops unroll. */
static inline __attribute__((always_inline)) void packed_block(float *out, int ldo, const float *inp, int ldi,
                                                               const float *Wp, const float *bp, int C, int O,
                                                               int p0, int epi, const float *x0,
                                                               const float *xl, const int R, const int NP) {
    __m512 acc[8][4];
    _Pragma("GCC unroll 8")
    for (int r = 0; r < R; r++)
        _Pragma("GCC unroll 8")
        for (int q = 0; q < NP; q++) acc[r][q] = _mm512_setzero_ps();
    const float *w0 = Wp + (int64_t)p0 * C * 16;
    for (int c = 0; c < C; c++) {
        __m512 w[4];
        _Pragma("GCC unroll 8")
        for (int q = 0; q < NP; q++) w[q] = _mm512_load_ps(w0 + ((int64_t)q * C + c) * 16);
        _Pragma("GCC unroll 8")
        for (int r = 0; r < R; r++) {
            __m512 x = _mm512_set1_ps(inp[(int64_t)r * ldi + c]);
            _Pragma("GCC unroll 8")
            for (int q = 0; q < NP; q++) acc[r][q] = _mm512_fmadd_ps(x, w[q], acc[r][q]);
        }
    }
    const __m512 zero = _mm512_setzero_ps();
    _Pragma("GCC unroll 8")
    for (int q = 0; q < NP; q++) {
        int o0 = (p0 + q) * 16;
        int left = O - o0;
        __mmask16 k = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        __m512 b = _mm512_load_ps(bp + o0);
        _Pragma("GCC unroll 8")
        for (int r = 0; r < R; r++) {
            __m512 y = _mm512_add_ps(acc[r][q], b);
            int64_t at = (int64_t)r * ldo + o0;
            if (epi == SC_EPI_RELU) {
                y = _mm512_max_ps(y, zero); /* NaN and -0 give +0, as y > 0 ? y : 0 */
            } else if (epi == SC_EPI_CROSS) {
                __m512 a = _mm512_maskz_loadu_ps(k, x0 + at), l = _mm512_maskz_loadu_ps(k, xl + at);
                y = _mm512_add_ps(_mm512_mul_ps(a, y), l);
            }
            _mm512_mask_storeu_ps(out + at, k, y);
        }
    }
}

#define PB(R, NP) packed_block(out, ldo, inp, ldi, packed, bp, C, O, p, epi, x0, xl, R, NP)
/* rows [0, R) of out for panels [p, p + np) */
static void packed_group(float *out, int ldo, const float *inp, int ldi, const float *packed, const float *bp,
                         int R, int p, int np, int C, int O, int epi, const float *x0, const float *xl) {
    switch (R * 8 + np) {
#define CASE(r) \
    case r * 8 + 1: PB(r, 1); break; \
    case r * 8 + 2: PB(r, 2); break; \
    case r * 8 + 3: PB(r, 3); break; \
    case r * 8 + 4: if (r <= 6) PB(r < 6 ? r : 6, 4); break;
        CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8)
#undef CASE
    }
}
#undef PB

void sc_linear_packed_forward(float *out, int ldo, const float *inp, int ldi, const float *packed, int B,
                              int C, int O, int epi, const float *x0, const float *xl) {
    const float *bp = packed + (int64_t)((O + 15) / 16) * 16 * C;
    /* Panels in groups of at most 4, as even as possible (9 panels: 3+3+3,
     * not 4+4+1, whose last group would be bound by loads); a group's
     * weights stay in L1 while all rows pass, 6 rows at a time for 4 panels
     * (24 accumulators), 8 for 3 or fewer. */
    int NP = (O + 15) / 16, groups = (NP + 3) / 4;
    for (int g = 0, p = 0; g < groups; g++) {
        int np = (NP - p) / (groups - g) + ((NP - p) % (groups - g) ? 1 : 0);
        int rmax = np == 4 ? 6 : 8;
        for (int r0 = 0; r0 < B; r0 += rmax) {
            int R = B - r0 < rmax ? B - r0 : rmax;
            int64_t at = (int64_t)r0 * ldo;
            packed_group(out + at, ldo, inp + (int64_t)r0 * ldi, ldi, packed, bp, R, p, np, C, O, epi,
                         x0 ? x0 + at : NULL, xl ? xl + at : NULL);
        }
        p += np;
    }
}
#else
/* Plain C with the same operations (fmaf in c order, then bias, then the
 * epilogue). */
void sc_linear_packed_forward(float *out, int ldo, const float *inp, int ldi, const float *packed, int B,
                              int C, int O, int epi, const float *x0, const float *xl) {
    const float *bp = packed + (int64_t)((O + 15) / 16) * 16 * C;
    for (int b = 0; b < B; b++)
        for (int o = 0; o < O; o++) {
            const float *w = packed + (int64_t)(o / 16) * C * 16 + o % 16;
            float acc = 0.0f;
            for (int c = 0; c < C; c++) acc = fmaf(inp[(int64_t)b * ldi + c], w[(int64_t)c * 16], acc);
            float y = acc + bp[o];
            int64_t at = (int64_t)b * ldo + o;
            if (epi == SC_EPI_RELU) y = y > 0.0f ? y : 0.0f;
            else if (epi == SC_EPI_CROSS) {
                float t = x0[at] * y;
                y = t + xl[at];
            }
            out[at] = y;
        }
}
#endif

/* ---------------- packed dense layer in bfloat16 (opt-in serving precision) ---------------- */

int sc_linear_bf16_available(void) {
#if defined(__AVX512BF16__)
    return 1;
#else
    return 0;
#endif
}

int64_t sc_linear_packed_bf16_floats(int C, int O) {
    int64_t O16 = ((int64_t)O + 15) / 16 * 16, C2 = ((int64_t)C + 1) / 2;
    return O16 * C2 + O16; /* C2 pairs of bf16 per output, in float-sized units, then the f32 bias */
}

/* float to bfloat16, round to nearest even (as vcvtne2ps2bf16; NaN kept NaN) */
static uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

void sc_linear_pack_bf16(float *packed, const float *W, const float *bias, int C, int O) {
    int NP = (O + 15) / 16, C2 = (C + 1) / 2;
    uint16_t *p = (uint16_t *)packed;
    for (int pn = 0; pn < NP; pn++)
        for (int c2 = 0; c2 < C2; c2++)
            for (int j = 0; j < 16; j++)
                for (int h = 0; h < 2; h++) {
                    int o = pn * 16 + j, c = 2 * c2 + h;
                    p[(((int64_t)pn * C2 + c2) * 16 + j) * 2 + h] = o < O && c < C ? to_bf16(W[(int64_t)o * C + c]) : 0;
                }
    float *pb = packed + (int64_t)NP * 16 * C2;
    for (int o = 0; o < NP * 16; o++) pb[o] = bias && o < O ? bias[o] : 0.0f;
}

#if defined(__AVX512BF16__)
static inline __attribute__((always_inline)) void bf16_block(float *out, int ldo, const uint32_t *xin, int C2,
                                                             const float *Wp, const float *bp, int O, int p0,
                                                             int epi, const float *x0, const float *xl,
                                                             const int R, const int NP) {
    __m512 acc[8][4];
    _Pragma("GCC unroll 8")
    for (int r = 0; r < R; r++)
        _Pragma("GCC unroll 8")
        for (int q = 0; q < NP; q++) acc[r][q] = _mm512_setzero_ps();
    const uint32_t *w0 = (const uint32_t *)Wp + (int64_t)p0 * C2 * 16;
    for (int c = 0; c < C2; c++) {
        __m512bh w[4];
        _Pragma("GCC unroll 8")
        for (int q = 0; q < NP; q++) w[q] = (__m512bh)_mm512_load_si512(w0 + ((int64_t)q * C2 + c) * 16);
        _Pragma("GCC unroll 8")
        for (int r = 0; r < R; r++) {
            __m512bh x = (__m512bh)_mm512_set1_epi32((int)xin[(int64_t)r * C2 + c]);
            _Pragma("GCC unroll 8")
            for (int q = 0; q < NP; q++) acc[r][q] = _mm512_dpbf16_ps(acc[r][q], x, w[q]);
        }
    }
    const __m512 zero = _mm512_setzero_ps();
    _Pragma("GCC unroll 8")
    for (int q = 0; q < NP; q++) {
        int o0 = (p0 + q) * 16, left = O - o0;
        __mmask16 k = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        __m512 b = _mm512_load_ps(bp + o0);
        _Pragma("GCC unroll 8")
        for (int r = 0; r < R; r++) {
            __m512 y = _mm512_add_ps(acc[r][q], b);
            int64_t at = (int64_t)r * ldo + o0;
            if (epi == SC_EPI_RELU) {
                y = _mm512_max_ps(y, zero);
            } else if (epi == SC_EPI_CROSS) {
                __m512 a = _mm512_maskz_loadu_ps(k, x0 + at), l = _mm512_maskz_loadu_ps(k, xl + at);
                y = _mm512_add_ps(_mm512_mul_ps(a, y), l);
            }
            _mm512_mask_storeu_ps(out + at, k, y);
        }
    }
}

#define PB(R, NP) bf16_block(out, ldo, xin, C2, packed, bp, O, p, epi, x0, xl, R, NP)
static void bf16_group(float *out, int ldo, const uint32_t *xin, int C2, const float *packed, const float *bp, int R,
                       int p, int np, int O, int epi, const float *x0, const float *xl) {
    switch (R * 8 + np) {
#define CASE(r) \
    case r * 8 + 1: PB(r, 1); break; \
    case r * 8 + 2: PB(r, 2); break; \
    case r * 8 + 3: PB(r, 3); break; \
    case r * 8 + 4: if (r <= 6) PB(r < 6 ? r : 6, 4); break;
        CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8)
#undef CASE
    }
}
#undef PB
#endif

void sc_linear_packed_bf16_forward(float *out, int ldo, const float *inp, int ldi, uint32_t *scratch,
                                   const float *packed, int B, int C, int O, int epi, const float *x0,
                                   const float *xl) {
#if defined(__AVX512BF16__)
    int C2 = (C + 1) / 2;
    /* the inputs rounded to bfloat16 once, as pairs */
    for (int b = 0; b < B; b++) {
        const float *x = inp + (int64_t)b * ldi;
        uint32_t *d = scratch + (int64_t)b * C2;
        int c = 0;
        for (; c + 32 <= 2 * C2 && c + 32 <= C; c += 32)
            _mm512_storeu_si512(d + c / 2, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + c + 16), _mm512_loadu_ps(x + c)));
        for (; c < C; c += 2) {
            uint32_t lo = to_bf16(x[c]), hi = c + 1 < C ? to_bf16(x[c + 1]) : 0;
            d[c / 2] = lo | hi << 16;
        }
    }
    const float *bp = packed + (int64_t)((O + 15) / 16) * 16 * C2;
    int NP = (O + 15) / 16, groups = (NP + 3) / 4;
    for (int g = 0, p = 0; g < groups; g++) {
        int np = (NP - p) / (groups - g) + ((NP - p) % (groups - g) ? 1 : 0);
        int rmax = np == 4 ? 6 : 8;
        for (int r0 = 0; r0 < B; r0 += rmax) {
            int R = B - r0 < rmax ? B - r0 : rmax;
            int64_t at = (int64_t)r0 * ldo;
            bf16_group(out + at, ldo, scratch + (int64_t)r0 * C2, C2, packed, bp, R, p, np, O, epi,
                       x0 ? x0 + at : NULL, xl ? xl + at : NULL);
        }
        p += np;
    }
#else
    (void)out, (void)ldo, (void)inp, (void)ldi, (void)scratch, (void)packed, (void)B, (void)C, (void)O, (void)epi,
        (void)x0, (void)xl;
#endif
}

void sc_colsum_acc(float *out, const float *x, int B, int O) {
    for (int b = 0; b < B; b++) {
        const float *r = x + (int64_t)b * O;
        for (int o = 0; o < O; o++) out[o] += r[o];
    }
}

void sc_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, int B, int C, int O) {
    if (dinp) sc_gemm(0, 0, B, C, O, 1.0f, dout, O, weight, C, 1.0f, dinp, C);
    if (dweight) sc_gemm(1, 0, O, C, B, 1.0f, dout, O, inp, C, 1.0f, dweight, C);
    if (dbias) sc_colsum_acc(dbias, dout, B, O);
}

/* ---------------- bfloat16 GEMMs for training (opt-in precision "bf16") ----------------
 * op(A) and op(B) rounded to bfloat16 (nearest even), packed in pairs along
 * k, products summed in float (vdpbf16ps). Packed layouts (32-bit words, each
 * a pair: low half k even, high half k odd, zero past K):
 *   A, ta = 0: ap[m * K2 + k2]   (rows of op(A) contiguous in A)
 *   A, ta = 1: ap[k2 * Mp + m]   (columns of A contiguous: Mp = M rounded up to 16)
 *   B: panels of 16 columns, bp[(pn * K2 + k2) * 16 + j], n = 16 pn + j (zero past N).
 * The kernel keeps R rows x NP panels of float sums in registers over all of
 * k (k in order from 0), so an element's sum does not depend on the tiling
 * or the threads. */

static float bf16_round(float f) {
    uint32_t u = (uint32_t)to_bf16(f) << 16;
    float r;
    memcpy(&r, &u, 4);
    return r;
}

int64_t sc_gemm_bf16_scratch(int M, int N, int K) {
    int64_t Mp = ((int64_t)M + 15) / 16 * 16, N16 = ((int64_t)N + 15) / 16 * 16;
    int64_t fast = Mp * (((int64_t)K + 1) / 2) + N16 * (((int64_t)K + 1) / 2); /* packed pairs */
    int64_t plain = (int64_t)M * K + (int64_t)K * N;                          /* rounded floats */
    return (fast > plain ? fast : plain) + 32; /* + room to align B's panels to 64 bytes */
}

void sc_gemm_bf16_plain(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *Bm,
                        int ldb, float beta, float *C, int ldc, uint32_t *scratch) {
    if (M <= 0 || N <= 0) return;
    float *ar = (float *)scratch, *br = ar + (int64_t)M * K;
    for (int m = 0; m < M; m++)
        for (int k = 0; k < K; k++)
            ar[(int64_t)m * K + k] = bf16_round(ta ? A[(int64_t)k * lda + m] : A[(int64_t)m * lda + k]);
    for (int k = 0; k < K; k++)
        for (int n = 0; n < N; n++)
            br[(int64_t)k * N + n] = bf16_round(tb ? Bm[(int64_t)n * ldb + k] : Bm[(int64_t)k * ldb + n]);
    sc_gemm(0, 0, M, N, K, 1.0f, ar, K, br, N, beta, C, ldc);
}

#if defined(__AVX512BF16__)
/* 16 pairs (k even from lo, k odd from hi) as bfloat16 in 32-bit lanes */
static inline __m512i bf16_pairs(__m512 lo, __m512 hi) {
    __m512i l = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(lo));
    __m512i h = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(hi));
    return _mm512_or_si512(l, _mm512_slli_epi32(h, 16));
}

typedef struct {
    int ta, tb, M, N, K, K2, Mp, NP, groups, tasks, by_rows;
    const float *A, *Bm;
    int lda, ldb, ldc;
    float beta;
    float *C;
    uint32_t *ap, *bp;
} g16_ctx;

/* Pack chunk t of op(A)'s rows (ta = 0) or k pairs (ta = 1), and of B's panels. */
static void g16_pack_task(void *vc, int t) {
    g16_ctx *c = vc;
    int K = c->K, K2 = c->K2;
    int64_t lo, hi;
    if (!c->ta) {
        chunk(c->M, c->tasks, t, &lo, &hi);
        for (int64_t m = lo; m < hi; m++) {
            const float *x = c->A + m * c->lda;
            uint32_t *d = c->ap + m * K2;
            int k = 0;
            for (; k + 32 <= K; k += 32)
                _mm512_storeu_si512(d + k / 2,
                                    (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + k + 16), _mm512_loadu_ps(x + k)));
            for (; k < K; k += 2) d[k / 2] = to_bf16(x[k]) | (uint32_t)(k + 1 < K ? to_bf16(x[k + 1]) : 0) << 16;
        }
    } else {
        chunk(K2, c->tasks, t, &lo, &hi);
        for (int64_t k2 = lo; k2 < hi; k2++) {
            const float *r0 = c->A + 2 * k2 * c->lda, *r1 = 2 * k2 + 1 < K ? r0 + c->lda : NULL;
            uint32_t *d = c->ap + k2 * c->Mp;
            for (int m = 0; m < c->M; m += 16) {
                int left = c->M - m;
                __mmask16 k = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
                __m512 a = _mm512_maskz_loadu_ps(k, r0 + m), b = r1 ? _mm512_maskz_loadu_ps(k, r1 + m) : _mm512_setzero_ps();
                _mm512_store_si512(d + m, bf16_pairs(a, b));
            }
        }
    }
    chunk(c->NP, c->tasks, t, &lo, &hi);
    for (int64_t pn = lo; pn < hi; pn++) {
        uint32_t *d = c->bp + pn * K2 * 16;
        int n0 = (int)pn * 16, left = c->N - n0;
        if (!c->tb) {
            __mmask16 k = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
            for (int k2 = 0; k2 < K2; k2++) {
                const float *r0 = c->Bm + (int64_t)2 * k2 * c->ldb + n0;
                __m512 a = _mm512_maskz_loadu_ps(k, r0);
                __m512 b = 2 * k2 + 1 < K ? _mm512_maskz_loadu_ps(k, r0 + c->ldb) : _mm512_setzero_ps();
                _mm512_store_si512(d + (int64_t)k2 * 16, bf16_pairs(a, b));
            }
        } else {
            for (int j = 0; j < 16; j++) {
                if (j >= left) {
                    for (int k2 = 0; k2 < K2; k2++) d[(int64_t)k2 * 16 + j] = 0;
                    continue;
                }
                const float *x = c->Bm + (int64_t)(n0 + j) * c->ldb;
                int k = 0;
                uint32_t tmp[16];
                for (; k + 32 <= K; k += 32) {
                    _mm512_storeu_si512(tmp, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + k + 16),
                                                                         _mm512_loadu_ps(x + k)));
                    for (int i = 0; i < 16; i++) d[((int64_t)k / 2 + i) * 16 + j] = tmp[i];
                }
                for (; k < K; k += 2)
                    d[((int64_t)k / 2) * 16 + j] = to_bf16(x[k]) | (uint32_t)(k + 1 < K ? to_bf16(x[k + 1]) : 0) << 16;
            }
        }
    }
}

/* R rows from m0 x NP panels from p0: C = beta C + sum over all k. */
static inline __attribute__((always_inline)) void g16_block(const g16_ctx *c, int m0, int p0, const int R,
                                                            const int NP) {
    __m512 acc[8][4];
    _Pragma("GCC unroll 8")
    for (int r = 0; r < R; r++)
        _Pragma("GCC unroll 8")
        for (int q = 0; q < NP; q++) acc[r][q] = _mm512_setzero_ps();
    int K2 = c->K2;
    int64_t ars = c->ta ? 1 : K2, aks = c->ta ? c->Mp : 1;
    const uint32_t *a0 = c->ap + (int64_t)m0 * ars, *w0 = c->bp + (int64_t)p0 * K2 * 16;
    for (int k2 = 0; k2 < K2; k2++) {
        __m512bh w[4];
        _Pragma("GCC unroll 8")
        for (int q = 0; q < NP; q++) w[q] = (__m512bh)_mm512_load_si512(w0 + ((int64_t)q * K2 + k2) * 16);
        const uint32_t *ak = a0 + k2 * aks;
        _Pragma("GCC unroll 8")
        for (int r = 0; r < R; r++) {
            __m512bh x = (__m512bh)_mm512_set1_epi32((int)ak[r * ars]);
            _Pragma("GCC unroll 8")
            for (int q = 0; q < NP; q++) acc[r][q] = _mm512_dpbf16_ps(acc[r][q], x, w[q]);
        }
    }
    _Pragma("GCC unroll 8")
    for (int q = 0; q < NP; q++) {
        int n0 = (p0 + q) * 16, left = c->N - n0;
        __mmask16 k = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        _Pragma("GCC unroll 8")
        for (int r = 0; r < R; r++) {
            float *o = c->C + (int64_t)(m0 + r) * c->ldc + n0;
            __m512 y = acc[r][q];
            if (c->beta != 0.0f) y = _mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(c->beta), _mm512_maskz_loadu_ps(k, o)), y);
            _mm512_mask_storeu_ps(o, k, y);
        }
    }
}

#define GB(R, NP) g16_block(c, m0, p, R, NP)
static void g16_tile(const g16_ctx *c, int m0, int R, int p, int np) {
    switch (R * 8 + np) {
#define CASE(r) \
    case r * 8 + 1: GB(r, 1); break; \
    case r * 8 + 2: GB(r, 2); break; \
    case r * 8 + 3: GB(r, 3); break; \
    case r * 8 + 4: if (r <= 6) GB(r < 6 ? r : 6, 4); break;
        CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8)
#undef CASE
    }
}
#undef GB

/* Rows [mlo, mhi) x panel groups [glo, ghi). */
static void g16_range(const g16_ctx *c, int mlo, int mhi, int glo, int ghi) {
    for (int g = 0, p = 0; g < c->groups; g++) {
        int np = (c->NP - p) / (c->groups - g) + ((c->NP - p) % (c->groups - g) ? 1 : 0);
        if (g >= glo && g < ghi) {
            int rmax = np == 4 ? 6 : 8;
            for (int m0 = mlo; m0 < mhi; m0 += rmax) g16_tile(c, m0, mhi - m0 < rmax ? mhi - m0 : rmax, p, np);
        }
        p += np;
    }
}

static void g16_compute_task(void *vc, int t) {
    g16_ctx *c = vc;
    int64_t lo, hi;
    if (c->by_rows) {
        chunk(c->M, c->tasks, t, &lo, &hi);
        g16_range(c, (int)lo, (int)hi, 0, c->groups);
    } else {
        chunk(c->groups, c->tasks, t, &lo, &hi);
        g16_range(c, 0, c->M, (int)lo, (int)hi);
    }
}
#endif

void sc_gemm_bf16(int ta, int tb, int M, int N, int K, const float *A, int lda, const float *Bm, int ldb,
                  float beta, float *C, int ldc, uint32_t *scratch, int n_threads) {
    if (M <= 0 || N <= 0) return;
#if defined(__AVX512BF16__)
    if (K <= 0) {
        sc_gemm(0, 0, M, N, 0, 1.0f, A, lda, Bm, ldb, beta, C, ldc);
        return;
    }
    g16_ctx c = {.ta = ta, .tb = tb, .M = M, .N = N, .K = K, .K2 = (K + 1) / 2, .Mp = (M + 15) / 16 * 16,
                 .NP = (N + 15) / 16, .A = A, .Bm = Bm, .lda = lda, .ldb = ldb, .ldc = ldc, .beta = beta, .C = C};
    c.groups = (c.NP + 3) / 4;
    int64_t an = (int64_t)(ta ? c.Mp : M) * c.K2;
    c.ap = scratch;
    c.bp = scratch + (an + 15) / 16 * 16;
    uintptr_t mis = ((uintptr_t)c.bp & 63) / 4; /* scratch is 4-byte aligned; panels want 64 */
    if (mis) c.bp += 16 - mis;
    if (ta && ((uintptr_t)c.ap & 63)) { /* aligned stores of A's columns */
        c.ap += 16 - ((uintptr_t)c.ap & 63) / 4;
        c.bp += 16;
    }
    int nt = n_threads < 1 ? 1 : n_threads;
    c.tasks = nt;
    sc_parallel_for(nt, nt, g16_pack_task, &c);
    /* rows when there are enough for every thread, else panel groups */
    c.by_rows = M >= 16 * nt || c.groups < nt;
    c.tasks = c.by_rows ? n_chunks(M, nt, 16) : (c.groups < nt ? c.groups : nt);
    sc_parallel_for(c.tasks, nt, g16_compute_task, &c);
#else
    (void)n_threads;
    sc_gemm_bf16_plain(ta, tb, M, N, K, A, lda, Bm, ldb, beta, C, ldc, scratch);
#endif
}

void sc_linear_forward_bf16(float *out, const float *inp, const float *weight, const float *bias, int B, int C,
                            int O, uint32_t *scratch, int n_threads) {
    if (bias)
        for (int b = 0; b < B; b++) memcpy(out + (int64_t)b * O, bias, sizeof(float) * O);
    sc_gemm_bf16(0, 1, B, O, C, inp, C, weight, C, bias ? 1.0f : 0.0f, out, O, scratch, n_threads);
}

void sc_linear_backward_bf16(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                             const float *weight, int B, int C, int O, uint32_t *scratch, int n_threads) {
    if (dinp) sc_gemm_bf16(0, 0, B, C, O, dout, O, weight, C, 1.0f, dinp, C, scratch, n_threads);
    if (dweight) sc_gemm_bf16(1, 0, O, C, B, dout, O, inp, C, 1.0f, dweight, C, scratch, n_threads);
    if (dbias) sc_colsum_acc(dbias, dout, B, O);
}

int64_t sc_linear_bf16_scratch(int B, int C, int O) {
    int64_t a = sc_gemm_bf16_scratch(B, O, C), b = sc_gemm_bf16_scratch(B, C, O), d = sc_gemm_bf16_scratch(O, C, B);
    return a > b ? (a > d ? a : d) : (b > d ? b : d);
}

/* ---------------- ReLU / sigmoid / dropout ---------------- */

typedef struct {
    float *a;
    const float *b, *c;
    int64_t n;
    int tasks;
} ew_ctx;

static void relu_fwd_task(void *vc, int t) {
    ew_ctx *c = vc;
    int64_t lo, hi;
    chunk(c->n, c->tasks, t, &lo, &hi);
    for (int64_t i = lo; i < hi; i++) c->a[i] = c->b[i] > 0.0f ? c->b[i] : 0.0f;
}

void sc_relu_forward(float *out, const float *inp, int64_t N, int n_threads) {
    ew_ctx c = {out, inp, NULL, N, n_chunks(N, n_threads, 1 << 15)};
    sc_parallel_for(c.tasks, n_threads, relu_fwd_task, &c);
}

static void relu_bwd_task(void *vc, int t) {
    ew_ctx *c = vc;
    int64_t lo, hi;
    chunk(c->n, c->tasks, t, &lo, &hi);
    for (int64_t i = lo; i < hi; i++)
        if (c->c[i] > 0.0f) c->a[i] += c->b[i];
}

void sc_relu_backward(float *dinp, const float *dout, const float *out, int64_t N, int n_threads) {
    if (dinp == dout) {
        /* In place: dinp was zero before, so the result is dout masked. */
        for (int64_t i = 0; i < N; i++)
            if (!(out[i] > 0.0f)) dinp[i] = 0.0f;
        return;
    }
    ew_ctx c = {dinp, dout, out, N, n_chunks(N, n_threads, 1 << 15)};
    sc_parallel_for(c.tasks, n_threads, relu_bwd_task, &c);
}

void sc_sigmoid_forward(float *out, const float *inp, int64_t N) {
    for (int64_t i = 0; i < N; i++) out[i] = 1.0f / (1.0f + expf(-inp[i]));
}

void sc_sigmoid_backward(float *dinp, const float *dout, const float *out, int64_t N) {
    for (int64_t i = 0; i < N; i++) dinp[i] += dout[i] * out[i] * (1.0f - out[i]);
}

void sc_dropout_forward(float *out, float *mask, const float *inp, int64_t N, float p, sc_rng *rng) {
    if (p <= 0.0f) {
        for (int64_t i = 0; i < N; i++) {
            mask[i] = 1.0f;
            out[i] = inp[i];
        }
        return;
    }
    float keep = 1.0f / (1.0f - p);
    for (int64_t i = 0; i < N; i++) {
        mask[i] = sc_rng_uniform(rng) < p ? 0.0f : keep;
        out[i] = inp[i] * mask[i];
    }
}

void sc_dropout_backward(float *dinp, const float *dout, const float *mask, int64_t N) {
    for (int64_t i = 0; i < N; i++) dinp[i] += dout[i] * mask[i];
}

/* ---------------- embeddings ---------------- */

int64_t sc_embedding_check_ids(const int32_t *ids, int64_t n, int64_t V) {
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V) return i;
    return -1;
}

#if defined(__AVX512F__)
#include <immintrin.h>
/* D a multiple of 16: the same adds per element in the same order, 16 at a time. */
static void pool_forward_x16(float *out, int out_stride, float *scale, const float *table, const int32_t *ids, int B,
                             int W, int D, int pool_mean) {
    for (int b = 0; b < B; b++) {
        float *o = out + (int64_t)b * out_stride;
        const int32_t *r = ids + (int64_t)b * W;
        int len = 0;
        for (int w = 0; w < W; w++) len += r[w] != 0;
        float s = 1.0f;
        if (pool_mean) s = len > 0 ? 1.0f / (float)len : 0.0f;
        for (int d = 0; d < D; d += 16) {
            __m512 acc = _mm512_setzero_ps();
            for (int w = 0; w < W; w++)
                if (r[w]) acc = _mm512_add_ps(acc, _mm512_loadu_ps(table + (int64_t)r[w] * D + d));
            if (pool_mean && len > 1) acc = _mm512_mul_ps(acc, _mm512_set1_ps(s));
            _mm512_storeu_ps(o + d, acc);
        }
        if (scale) scale[b] = s;
    }
}
#endif

void sc_embedding_pool_forward(float *out, int out_stride, float *scale, const float *table,
                               const int32_t *ids, int B, int W, int D, int pool_mean) {
#if defined(__AVX512F__)
    if (D % 16 == 0) {
        pool_forward_x16(out, out_stride, scale, table, ids, B, W, D, pool_mean);
        return;
    }
#endif
    for (int b = 0; b < B; b++) {
        float *o = out + (int64_t)b * out_stride;
        const int32_t *r = ids + (int64_t)b * W;
        memset(o, 0, sizeof(float) * D);
        int len = 0;
        for (int w = 0; w < W; w++) {
            if (r[w] == 0) continue;
            const float *e = table + (int64_t)r[w] * D;
            for (int d = 0; d < D; d++) o[d] += e[d];
            len++;
        }
        float s = 1.0f;
        if (pool_mean) {
            s = len > 0 ? 1.0f / (float)len : 0.0f;
            if (len > 1)
                for (int d = 0; d < D; d++) o[d] *= s;
        }
        if (scale) scale[b] = s;
    }
}

void sc_embedding_numeric_forward(float *out, int out_stride, const float *row,
                                  const float *values, int B, int D) {
    for (int b = 0; b < B; b++) {
        float *o = out + (int64_t)b * out_stride;
        for (int d = 0; d < D; d++) o[d] = values[b] * row[d];
    }
}

int sc_sparse_rows_init(sc_sparse_rows *s, int64_t V) {
    memset(s, 0, sizeof *s);
    s->V = V;
    s->stamp = sc_calloc((size_t)V, sizeof(int64_t));
    s->slot = sc_calloc((size_t)V, sizeof(int32_t));
    if (!s->stamp || !s->slot) {
        sc_sparse_rows_free(s);
        return -1;
    }
    return 0;
}

void sc_sparse_rows_free(sc_sparse_rows *s) {
    sc_free(s->stamp);
    sc_free(s->slot);
    sc_free(s->touched);
    memset(s, 0, sizeof *s);
}

void sc_sparse_rows_begin(sc_sparse_rows *s) {
    s->step++;
    s->n_touched = 0;
}

int sc_sparse_rows_reserve(sc_sparse_rows *s, int64_t cap) {
    if (cap > s->V) cap = s->V;
    if (cap <= s->cap) return 0;
    size_t bytes;
    if (sc_mul_size((size_t)cap, sizeof(int32_t), &bytes) != 0) return -1;
    int32_t *t = sc_realloc(s->touched, bytes);
    if (!t) return -1;
    s->touched = t;
    s->cap = cap;
    return 0;
}

int sc_sparse_rows_add(sc_sparse_rows *s, const int32_t *ids, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id == 0 || s->stamp[id] == s->step) continue;
        if (s->n_touched >= s->cap) return -1;
        s->stamp[id] = s->step;
        s->slot[id] = (int32_t)s->n_touched;
        s->touched[s->n_touched++] = id;
    }
    return 0;
}

void sc_embedding_pool_backward(float *grad, const sc_sparse_rows *s, const float *dout,
                                int dout_stride, const float *scale, const int32_t *ids, int B,
                                int W, int D) {
    for (int b = 0; b < B; b++) {
        const float *g = dout + (int64_t)b * dout_stride;
        const int32_t *r = ids + (int64_t)b * W;
        float sc = scale ? scale[b] : 1.0f;
        if (sc == 0.0f) continue;
        for (int w = 0; w < W; w++) {
            if (r[w] == 0) continue;
            float *gr = grad + (int64_t)s->slot[r[w]] * D;
            for (int d = 0; d < D; d++) gr[d] += sc * g[d];
        }
    }
}

void sc_embedding_numeric_backward(float *grad_row, const float *dout, int dout_stride,
                                   const float *values, int B, int D) {
    for (int b = 0; b < B; b++) {
        const float *g = dout + (int64_t)b * dout_stride;
        for (int d = 0; d < D; d++) grad_row[d] += values[b] * g[d];
    }
}

/* ---------------- FM ---------------- */

typedef struct {
    float *out;
    const float *a, *b;
    int B, F, D, tasks;
} fm_ctx;

static void fm_fwd_task(void *vc, int t) {
    fm_ctx *c = vc;
    int64_t lo, hi;
    chunk(c->B, c->tasks, t, &lo, &hi);
    int F = c->F, D = c->D;
#if defined(__AVX512F__)
    if (D % 16 == 0) {
        /* the same operations per element, 16 at a time */
        for (int64_t b = lo; b < hi; b++) {
            const float *x = c->a + b * F * D;
            float *o = c->out + b * D;
            for (int d = 0; d < D; d += 16) {
                __m512 s = _mm512_setzero_ps(), q = _mm512_setzero_ps();
                for (int f = 0; f < F; f++) {
                    __m512 v = _mm512_loadu_ps(x + f * D + d);
                    s = _mm512_add_ps(s, v);
                    q = _mm512_add_ps(q, _mm512_mul_ps(v, v));
                }
                _mm512_storeu_ps(o + d, _mm512_mul_ps(_mm512_set1_ps(0.5f), _mm512_sub_ps(_mm512_mul_ps(s, s), q)));
            }
        }
        return;
    }
#endif
    for (int64_t b = lo; b < hi; b++) {
        const float *x = c->a + b * F * D;
        float *o = c->out + b * D;
        for (int d = 0; d < D; d++) {
            float s = 0.0f, q = 0.0f;
            for (int f = 0; f < F; f++) {
                float v = x[f * D + d];
                s += v;
                q += v * v;
            }
            o[d] = 0.5f * (s * s - q);
        }
    }
}

void sc_fm_forward(float *out, const float *inp, int B, int F, int D, int n_threads) {
    fm_ctx c = {out, inp, NULL, B, F, D, n_chunks(B, n_threads, 256)};
    sc_parallel_for(c.tasks, n_threads, fm_fwd_task, &c);
}

static void fm_bwd_task(void *vc, int t) {
    fm_ctx *c = vc; /* out = dinp, a = dout, b = inp */
    int64_t lo, hi;
    chunk(c->B, c->tasks, t, &lo, &hi);
    int F = c->F, D = c->D;
    for (int64_t b = lo; b < hi; b++) {
        const float *x = c->b + b * F * D;
        const float *g = c->a + b * D;
        float *dx = c->out + b * F * D;
        for (int d = 0; d < D; d++) {
            float s = 0.0f;
            for (int f = 0; f < F; f++) s += x[f * D + d];
            for (int f = 0; f < F; f++) dx[f * D + d] += g[d] * (s - x[f * D + d]);
        }
    }
}

void sc_fm_backward(float *dinp, const float *dout, const float *inp, int B, int F, int D,
                    int n_threads) {
    fm_ctx c = {dinp, dout, inp, B, F, D, n_chunks(B, n_threads, 256)};
    sc_parallel_for(c.tasks, n_threads, fm_bwd_task, &c);
}

/* ---------------- cross layers ---------------- */

typedef struct {
    float *out, *s;
    const float *x0, *xl, *w, *b;
    int B, K, tasks;
} cross_ctx;

static void cross_fwd_task(void *vc, int t) {
    cross_ctx *c = vc;
    int64_t lo, hi;
    chunk(c->B, c->tasks, t, &lo, &hi);
    int K = c->K;
    for (int64_t b = lo; b < hi; b++) {
        const float *x0 = c->x0 + b * K, *xl = c->xl + b * K;
        float *o = c->out + b * K;
        float s = 0.0f;
        for (int k = 0; k < K; k++) s += xl[k] * c->w[k];
        c->s[b] = s;
        for (int k = 0; k < K; k++) o[k] = x0[k] * s + c->b[k] + xl[k];
    }
}

void sc_cross_forward(float *out, float *s, const float *x0, const float *xl, const float *w,
                      const float *b, int B, int K, int n_threads) {
    cross_ctx c = {out, s, x0, xl, w, b, B, K, n_chunks(B, n_threads, 256)};
    sc_parallel_for(c.tasks, n_threads, cross_fwd_task, &c);
}

typedef struct {
    float *dx0, *dxl, *ds;
    const float *dout, *s, *x0, *w;
    int B, K, tasks;
} crossb_ctx;

static void cross_bwd_task(void *vc, int t) {
    crossb_ctx *c = vc;
    int64_t lo, hi;
    chunk(c->B, c->tasks, t, &lo, &hi);
    int K = c->K;
    for (int64_t b = lo; b < hi; b++) {
        const float *g = c->dout + b * K, *x0 = c->x0 + b * K;
        float ds = 0.0f;
        for (int k = 0; k < K; k++) ds += g[k] * x0[k];
        c->ds[b] = ds;
        if (c->dx0) {
            float *d0 = c->dx0 + b * K;
            for (int k = 0; k < K; k++) d0[k] += g[k] * c->s[b];
        }
        if (c->dxl) {
            float *dl = c->dxl + b * K;
            for (int k = 0; k < K; k++) dl[k] += g[k] + ds * c->w[k];
        }
    }
}

void sc_cross_backward(float *dx0, float *dxl, float *dw, float *db, const float *dout,
                       const float *s, const float *x0, const float *xl, const float *w, int B,
                       int K, float *scratch_ds, int n_threads) {
    crossb_ctx c = {dx0, dxl, scratch_ds, dout, s, x0, w, B, K, n_chunks(B, n_threads, 256)};
    sc_parallel_for(c.tasks, n_threads, cross_bwd_task, &c);
    /* dw (K) += xl^T ds; db (K) += colsum(dout). */
    if (dw) cblas_sgemv(CblasRowMajor, CblasTrans, B, K, 1.0f, xl, K, scratch_ds, 1, 1.0f, dw, 1);
    if (db) sc_colsum_acc(db, dout, B, K);
}

typedef struct {
    float *out, *u;
    const float *x0, *xl;
    int B, K, tasks;
} cross2_ctx;

static void cross2_fwd_task(void *vc, int t) {
    cross2_ctx *c = vc;
    int64_t lo, hi;
    chunk((int64_t)c->B * c->K, c->tasks, t, &lo, &hi);
    for (int64_t i = lo; i < hi; i++) c->out[i] = c->x0[i] * c->u[i] + c->xl[i];
}

void sc_cross2_forward(float *out, float *u, const float *x0, const float *xl, const float *W,
                       const float *b, int B, int K, int n_threads) {
    sc_cross2_forward_bf16(out, u, x0, xl, W, b, B, K, NULL, n_threads);
}

void sc_cross2_forward_bf16(float *out, float *u, const float *x0, const float *xl, const float *W,
                            const float *b, int B, int K, uint32_t *scratch, int n_threads) {
    if (scratch)
        sc_linear_forward_bf16(u, xl, W, b, B, K, K, scratch, n_threads);
    else
        sc_linear_forward(u, xl, W, b, B, K, K);
    cross2_ctx c = {out, u, x0, xl, B, K, n_chunks((int64_t)B * K, n_threads, 1 << 15)};
    sc_parallel_for(c.tasks, n_threads, cross2_fwd_task, &c);
}

typedef struct {
    float *dx0, *dxl, *du;
    const float *dout, *u, *x0;
    int64_t n;
    int tasks;
} cross2b_ctx;

static void cross2_bwd_task(void *vc, int t) {
    cross2b_ctx *c = vc;
    int64_t lo, hi;
    chunk(c->n, c->tasks, t, &lo, &hi);
    for (int64_t i = lo; i < hi; i++) {
        c->du[i] = c->dout[i] * c->x0[i];
        if (c->dx0) c->dx0[i] += c->dout[i] * c->u[i];
        if (c->dxl) c->dxl[i] += c->dout[i];
    }
}

void sc_cross2_backward(float *dx0, float *dxl, float *dW, float *db, const float *dout,
                        const float *u, const float *x0, const float *xl, const float *W, int B,
                        int K, float *scratch_du, int n_threads) {
    sc_cross2_backward_bf16(dx0, dxl, dW, db, dout, u, x0, xl, W, B, K, scratch_du, NULL, n_threads);
}

void sc_cross2_backward_bf16(float *dx0, float *dxl, float *dW, float *db, const float *dout, const float *u,
                             const float *x0, const float *xl, const float *W, int B, int K, float *scratch_du,
                             uint32_t *scratch, int n_threads) {
    int64_t n = (int64_t)B * K;
    cross2b_ctx c = {dx0, dxl, scratch_du, dout, u, x0, n, n_chunks(n, n_threads, 1 << 15)};
    sc_parallel_for(c.tasks, n_threads, cross2_bwd_task, &c);
    if (scratch)
        sc_linear_backward_bf16(dxl, dW, db, scratch_du, xl, W, B, K, K, scratch, n_threads);
    else
        sc_linear_backward(dxl, dW, db, scratch_du, xl, W, B, K, K);
}

/* ---------------- AutoInt interacting layer ---------------- */

typedef struct {
    float *out;
    const sc_att_buffers *bf;
    const sc_att_scratch *sc;
    const float *dout;
    int B, F, A, NH, tasks;
    float alpha; /* score scaling */
} att_ctx;

static void att_fwd_task(void *vc, int t) {
    att_ctx *c = vc;
    int64_t lo, hi;
    chunk(c->B, c->tasks, t, &lo, &hi);
    int F = c->F, A = c->A, NH = c->NH, hd = A / NH;
    for (int64_t b = lo; b < hi; b++) {
        const float *q = c->bf->q + b * F * A, *k = c->bf->k + b * F * A, *v = c->bf->v + b * F * A;
        float *o = c->out + b * F * A; /* holds X Wr (or zeros) on entry */
        for (int h = 0; h < NH; h++) {
            float *P = c->bf->p + ((b * NH + h) * F) * F;
            for (int i = 0; i < F; i++) {
                float *pi = P + (int64_t)i * F;
                const float *qi = q + i * A + h * hd;
                float mx = -INFINITY;
                for (int j = 0; j < F; j++) {
                    const float *kj = k + j * A + h * hd;
                    float s = 0.0f;
                    for (int e = 0; e < hd; e++) s += qi[e] * kj[e];
                    s *= c->alpha;
                    pi[j] = s;
                    if (s > mx) mx = s;
                }
                float z = 0.0f;
                for (int j = 0; j < F; j++) {
                    pi[j] = expf(pi[j] - mx);
                    z += pi[j];
                }
                float iz = 1.0f / z;
                for (int j = 0; j < F; j++) pi[j] *= iz;
                float *oi = o + i * A + h * hd;
                for (int j = 0; j < F; j++) {
                    const float *vj = v + j * A + h * hd;
                    for (int e = 0; e < hd; e++) oi[e] += pi[j] * vj[e];
                }
            }
        }
        for (int i = 0; i < F * A; i++) o[i] = o[i] > 0.0f ? o[i] : 0.0f;
    }
}

void sc_attention_forward(float *out, sc_att_buffers *bufs, const float *X, const float *Wq,
                          const float *Wk, const float *Wv, const float *Wr, int B, int F, int C,
                          int A, int NH, int scaling, int n_threads) {
    int M = B * F;
    sc_gemm(0, 0, M, A, C, 1.0f, X, C, Wq, A, 0.0f, bufs->q, A);
    sc_gemm(0, 0, M, A, C, 1.0f, X, C, Wk, A, 0.0f, bufs->k, A);
    sc_gemm(0, 0, M, A, C, 1.0f, X, C, Wv, A, 0.0f, bufs->v, A);
    if (Wr)
        sc_gemm(0, 0, M, A, C, 1.0f, X, C, Wr, A, 0.0f, out, A);
    else
        memset(out, 0, sizeof(float) * (size_t)M * A);
    att_ctx c = {out, bufs, NULL, NULL, B, F, A, NH, n_chunks(B, n_threads, 64),
                 scaling ? 1.0f / sqrtf((float)(A / NH)) : 1.0f};
    sc_parallel_for(c.tasks, n_threads, att_fwd_task, &c);
}

static void att_bwd_task(void *vc, int t) {
    att_ctx *c = vc; /* out = layer output (post-ReLU) */
    int64_t lo, hi;
    chunk(c->B, c->tasks, t, &lo, &hi);
    int F = c->F, A = c->A, NH = c->NH, hd = A / NH;
    for (int64_t b = lo; b < hi; b++) {
        const float *q = c->bf->q + b * F * A, *k = c->bf->k + b * F * A, *v = c->bf->v + b * F * A;
        const float *o = c->out + b * F * A, *g = c->dout + b * F * A;
        float *dz = c->sc->dz + b * F * A, *dq = c->sc->dq + b * F * A;
        float *dk = c->sc->dk + b * F * A, *dv = c->sc->dv + b * F * A;
        for (int i = 0; i < F * A; i++) {
            dz[i] = o[i] > 0.0f ? g[i] : 0.0f;
            dq[i] = dk[i] = dv[i] = 0.0f;
        }
        for (int h = 0; h < NH; h++) {
            const float *P = c->bf->p + ((b * NH + h) * F) * F;
            for (int i = 0; i < F; i++) {
                const float *pi = P + (int64_t)i * F;
                const float *dri = dz + i * A + h * hd;
                /* dP_ij = dR_i . V_j; dV_j += P_ij dR_i; dS = P (dP - sum P dP) */
                float dp[F > 0 ? F : 1];
                float dot = 0.0f;
                for (int j = 0; j < F; j++) {
                    const float *vj = v + j * A + h * hd;
                    float *dvj = dv + j * A + h * hd;
                    float s = 0.0f;
                    for (int e = 0; e < hd; e++) {
                        s += dri[e] * vj[e];
                        dvj[e] += pi[j] * dri[e];
                    }
                    dp[j] = s;
                    dot += pi[j] * s;
                }
                const float *qi = q + i * A + h * hd;
                float *dqi = dq + i * A + h * hd;
                for (int j = 0; j < F; j++) {
                    float ds = pi[j] * (dp[j] - dot) * c->alpha;
                    const float *kj = k + j * A + h * hd;
                    float *dkj = dk + j * A + h * hd;
                    for (int e = 0; e < hd; e++) {
                        dqi[e] += ds * kj[e];
                        dkj[e] += ds * qi[e];
                    }
                }
            }
        }
    }
}

void sc_attention_backward(float *dX, float *dWq, float *dWk, float *dWv, float *dWr,
                           const float *dout, const float *out, const sc_att_buffers *bufs,
                           const float *X, const float *Wq, const float *Wk, const float *Wv,
                           const float *Wr, int B, int F, int C, int A, int NH, int scaling,
                           const sc_att_scratch *scratch, int n_threads) {
    att_ctx c = {(float *)out, bufs, scratch, dout, B, F, A, NH, n_chunks(B, n_threads, 64),
                 scaling ? 1.0f / sqrtf((float)(A / NH)) : 1.0f};
    sc_parallel_for(c.tasks, n_threads, att_bwd_task, &c);
    int M = B * F;
    /* Each projection P = X W: dW += X^T dP, dX += dP W^T. */
    const float *dP[4] = {scratch->dq, scratch->dk, scratch->dv, scratch->dz};
    const float *Ws[4] = {Wq, Wk, Wv, Wr};
    float *dWs[4] = {dWq, dWk, dWv, dWr};
    for (int p = 0; p < 4; p++) {
        if (!Ws[p]) continue;
        if (dWs[p]) sc_gemm(1, 0, C, A, M, 1.0f, X, C, dP[p], A, 1.0f, dWs[p], A);
        if (dX) sc_gemm(0, 1, M, C, A, 1.0f, dP[p], A, Ws[p], A, 1.0f, dX, C);
    }
}

/* ---------------- loss ---------------- */

float sc_bce_logits_forward(const float *logits, const float *labels, int B) {
    double s = 0.0;
    for (int b = 0; b < B; b++) {
        float z = logits[b];
        /* max(z,0) - z*y + log(1 + exp(-|z|)) */
        s += (z > 0 ? z : 0.0f) - z * labels[b] + log1pf(expf(-fabsf(z)));
    }
    return B > 0 ? (float)(s / B) : 0.0f;
}

void sc_bce_logits_backward(float *dlogits, const float *logits, const float *labels, int B,
                            float scale) {
    float k = B > 0 ? scale / (float)B : 0.0f;
    for (int b = 0; b < B; b++) {
        float z = logits[b];
        float p = z >= 0 ? 1.0f / (1.0f + expf(-z)) : expf(z) / (1.0f + expf(z));
        dlogits[b] = k * (p - labels[b]);
    }
}
