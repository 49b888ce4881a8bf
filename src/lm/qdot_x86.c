/* AVX2 and AVX-512 dot products on quantised blocks (x86-64). Each function
 * carries its own target attribute, so this file builds without -mavx2 and
 * the binary runs on any x86-64; qmatmul.c calls these only after cpuid says
 * the CPU has the instructions. The integer block sums are exact (as in the
 * plain C kernels); only the order of the float accumulation differs.
 *
 * Idea as ggml's ggml-cpu/arch/x86/quants.c: signed x signed int8 products
 * through maddubs (unsigned x signed) after moving x's sign onto y; the
 * 16-bit pair sums (at most 2 * 128 * 127, no saturation) widened by madd.
 * The 32-block integer kernels (qdot_x86_int.inc) are built twice: as
 * written, and for CPUs with AVX512_VNNI + AVX512VL with vpdpbusd in place
 * of maddubs + madd(ones): the same int32 lanes, so a _vnni kernel's result
 * is the same bits as its namesake's, 1.04-1.2x faster on Zen 4. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lm/gguf.h"
#include "lm/qmatmul.h"

/* vnni 1: the AVX512_VNNI variant, NULL where wtype has none */
sc_qdot_fn sc_qdot_avx2(int wtype, int vnni);
sc_qdot_fn sc_qdot_avx512(int wtype, int vnni);
sc_qdot4_fn sc_qdot4_avx2(int wtype, int vnni);
sc_qdot4_fn sc_qdot4_avx512(int wtype, int vnni);
sc_bf16_tile_fn sc_bf16_tile_avx512(void);
void sc_bf16_round_avx512(const float *x, size_t n, uint16_t *out);
sc_i8_tile_fn sc_i8_tile_avx512_vnni(void);
size_t sc_f16_round_avx2(const float *x, size_t n, uint16_t *out);
float sc_q8_block_avx2(const float *x, int8_t *q, int *sum);
size_t sc_f16_widen_avx2(const uint16_t *h, size_t n, float *out);
int sc_i8_unpack_avx2(const sc_qtensor *w, int r0, int R, uint8_t *u, float *d);
size_t sc_glu_avx2(float *g, const float *u, size_t n, int gelu);

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define AVX512 __attribute__((target("avx512f,avx512bw,avx2,fma,f16c")))
#define VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#define BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma,f16c")))

static inline float AVX2 f16_avx2(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

static inline float AVX2 hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* 16 bytes of nibbles -> 32 bytes in ggml order: low nibbles, then high */
static inline __m256i AVX2 nibbles_avx2(const uint8_t *q) {
    __m128i t = _mm_loadu_si128((const __m128i *)q);
    __m256i v = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
    return _mm256_and_si256(v, _mm256_set1_epi8(15));
}

/* bit j of the 32 bits at p -> byte j = 0xFF when set (ggml's bytes_from_bits_32) */
static inline __m256i AVX2 bits_to_bytes_avx2(const uint8_t *p) {
    uint32_t x;
    memcpy(&x, p, 4);
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)x), shuf);
    v = _mm256_or_si256(v, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
    return _mm256_cmpeq_epi8(v, _mm256_set1_epi64x(-1));
}

/* 32-block types: x (int8 weights, or unsigned for Q4_1) for block b of w */
static inline __m256i AVX2 x32_avx2(int wtype, const uint8_t *blk) {
    switch (wtype) {
    case SC_GGML_Q8_0: return _mm256_loadu_si256((const __m256i *)(blk + 2));
    case SC_GGML_Q4_0: return _mm256_sub_epi8(nibbles_avx2(blk + 2), _mm256_set1_epi8(8));
    case SC_GGML_Q4_1: return nibbles_avx2(blk + 4);
    default: { /* Q5_0 */
        __m256i hi = _mm256_andnot_si256(bits_to_bytes_avx2(blk + 2), _mm256_set1_epi8((char)0xF0));
        return _mm256_or_si256(nibbles_avx2(blk + 6), hi);
    }
    }
}

static inline __m512i AVX512 join256(__m256i lo, __m256i hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

static inline __m512 AVX512 scales2(float s0, float s1) {
    return _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(s0), _mm512_set1_ps(s1));
}

/* ---- the integer kernels, twice ---- */

#define QDOT_VNNI 0
#define T256 AVX2
#define T512 AVX512
#define V(name) name
#include "lm/qdot_x86_int.inc"
#undef QDOT_VNNI
#undef T256
#undef T512
#undef V

#define QDOT_VNNI 1
#define T256 VNNI
#define T512 VNNI
#define V(name) name##_vnni
#include "lm/qdot_x86_int.inc"
#undef QDOT_VNNI
#undef T256
#undef T512
#undef V

/* ---- K-quants (256-blocks) against Q8_K activations ---- */

/* Q4_K / Q5_K: the j-th 64 elements of a block as unsigned bytes, lo = the
 * first 32 (low nibbles of ql[32j..]), hi = the next 32 (high nibbles); Q5_K
 * adds bit 2j (lo) and 2j + 1 (hi) of the qh bytes hb as the fifth bit */
static inline void AVX2 q45_k_unpack_avx2(const uint8_t *ql, __m256i hb, int j, int five, __m256i *lo, __m256i *hi) {
    const __m256i m4 = _mm256_set1_epi8(15), one = _mm256_set1_epi8(1);
    __m256i q = _mm256_loadu_si256((const __m256i *)(ql + 32 * j));
    *lo = _mm256_and_si256(q, m4);
    *hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
    if (five) {
        *lo = _mm256_or_si256(*lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * j), one), 4));
        *hi = _mm256_or_si256(*hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * j + 1), one), 4));
    }
}

/* Q4_K / Q5_K: the 8 6-bit scales (bytes 0..7) and 8 mins (bytes 8..15)
 * of a block's 12 scale bytes at once, with 32-bit masks: what
 * sc_q_scale_min_k4(j) gives for j = 0..7 */
static inline __m128i AVX2 k4_scales_mins(const uint8_t *sc) {
    const uint32_t lo6 = 0x3f3f3f3f, lo4 = 0x0f0f0f0f, hi2 = 0x03030303;
    uint32_t u[3];
    memcpy(u, sc, 12);
    uint32_t s03 = u[0] & lo6, m03 = u[1] & lo6;
    uint32_t s47 = (u[2] & lo4) | (((u[0] >> 6) & hi2) << 4); /* low nibbles, top bits of bytes 0..3 */
    uint32_t m47 = ((u[2] >> 4) & lo4) | (((u[1] >> 6) & hi2) << 4); /* high nibbles, top bits of bytes 4..7 */
    return _mm_set_epi32((int)m47, (int)m03, (int)s47, (int)s03);
}

/* the 8 scales of k4_scales_mins as 16-bit values in both 128-bit halves */
static inline __m256i AVX2 k4_scales16(__m128i sm) { return _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm)); }

/* the scale of 32-element sub-block k (< 8) of k4_scales16 in every 16-bit lane */
static inline __m256i AVX2 k4_scale(__m256i s16, int k) {
    return _mm256_shuffle_epi8(s16, _mm256_set1_epi16((short)(0x0100 * (2 * k + 1) + 2 * k)));
}

/* m[2i] * (bs[4i] + bs[4i+1]) + m[2i+1] * (bs[4i+2] + bs[4i+3]) in lane i
 * (< 4): the mins (of k4_scales_mins) times the Q8_K sums of each 32
 * activations, exact in int32 */
static inline __m128i AVX2 k4_min_prod(__m128i sm, const int16_t *bs) {
    __m128i pairs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)bs), _mm_loadu_si128((const __m128i *)(bs + 8)));
    return _mm_madd_epi16(_mm_cvtepu8_epi16(_mm_srli_si128(sm, 8)), pairs);
}

static inline float AVX2 hsum128(__m128 s) {
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Q4_K / Q5_K: per pair of 32-element sub-blocks, unsigned 4/5-bit values
 * x int8 through maddubs, weighted by the sub-block's 6-bit scale in madd;
 * the mins times the activation sums apart (k4_min_prod), in 4 float lanes */

static inline __attribute__((always_inline)) float AVX2 q45_k_avx2(const uint8_t *w, const sc_qrow *a, int n, int five) {
    __m256 acc = _mm256_setzero_ps();
    __m128 mins = _mm_setzero_ps();
    size_t ts = five ? 176 : 144;
    for (int b = 0; b < n / 256; b++) {
        const uint8_t *blk = w + (size_t)b * ts, *qh = blk + 16, *ql = five ? blk + 48 : blk + 16;
        const int8_t *y = a->qs + (size_t)b * 256;
        __m128i sm = k4_scales_mins(blk + 4);
        __m128i mprod = k4_min_prod(sm, a->bsums + (size_t)b * 16);
        __m256i s16 = k4_scales16(sm);
        __m256i hb = five ? _mm256_loadu_si256((const __m256i *)qh) : _mm256_setzero_si256();
        __m256i sumi = _mm256_setzero_si256();
        #pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            __m256i lo, hi;
            q45_k_unpack_avx2(ql, hb, j, five, &lo, &hi);
            __m256i y0 = _mm256_loadu_si256((const __m256i *)(y + 64 * j));
            __m256i y1 = _mm256_loadu_si256((const __m256i *)(y + 64 * j + 32));
            __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, y0), k4_scale(s16, 2 * j));
            __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, y1), k4_scale(s16, 2 * j + 1));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p0, p1));
        }
        float dy = a->d[b];
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16_avx2(blk) * dy), _mm256_cvtepi32_ps(sumi), acc);
        mins = _mm_fmadd_ps(_mm_set1_ps(f16_avx2(blk + 2) * dy), _mm_cvtepi32_ps(mprod), mins);
    }
    return hsum256(acc) - hsum128(mins);
}

static float AVX2 q4_k_avx2(const uint8_t *w, const sc_qrow *a, int n) { return q45_k_avx2(w, a, n, 0); }
static float AVX2 q5_k_avx2(const uint8_t *w, const sc_qrow *a, int n) { return q45_k_avx2(w, a, n, 1); }

/* Q6_K: 6-bit values 0..63 x int8 through maddubs, int8 scales per 16
 * elements in madd; the offset 32 x the activation sums apart (q6_k_offset) */
/* Q6_K half h (0, 1) of a block: the 128 unsigned 6-bit values (low 4 bits
 * from ql, high 2 from qh) as 4 x 32 bytes, element 128h + 32k + i in v[k] */
static inline void AVX2 q6_k_unpack_avx2(const uint8_t *blk, int h, __m256i v[4]) {
    const __m256i m4 = _mm256_set1_epi8(15), m2 = _mm256_set1_epi8(3);
    const uint8_t *ql = blk + 64 * h, *qh = blk + 128 + 32 * h;
    __m256i qa = _mm256_loadu_si256((const __m256i *)ql), qb = _mm256_loadu_si256((const __m256i *)(ql + 32));
    __m256i hv = _mm256_loadu_si256((const __m256i *)qh);
    v[0] = _mm256_or_si256(_mm256_and_si256(qa, m4), _mm256_slli_epi16(_mm256_and_si256(hv, m2), 4));
    v[1] = _mm256_or_si256(_mm256_and_si256(qb, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hv, 2), m2), 4));
    v[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qa, 4), m4),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hv, 4), m2), 4));
    v[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qb, 4), m4),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hv, 6), m2), 4));
}

/* -32 * sum_i sc[i] * bs[i], i < 16, spread over 8 lanes: the offset of
 * Q6_K's values times the Q8_K sums of each 16 activations */
static inline __m256i AVX2 q6_k_offset(const int8_t *sc, const int16_t *bs) {
    __m256i p = _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc)),
                                  _mm256_loadu_si256((const __m256i *)bs));
    return _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(p, 5));
}

/* Q6_K half h's 8 int8 scales as 16-bit values in both 128-bit halves */
static inline __m256i AVX2 q6_k_scales(const int8_t *sc, int h) {
    return _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(sc + 8 * h))));
}

/* for the k-th 32 elements of a half (k < 4): scale 2k in the low 128-bit
 * half's 16-bit lanes, 2k + 1 in the high one's, from q6_k_scales */
static inline __m256i AVX2 q6_k_scale(__m256i s16, int k) {
    short lo = (short)(0x0100 * (4 * k + 1) + 4 * k), hi = (short)(lo + 0x0202);
    return _mm256_shuffle_epi8(s16, _mm256_setr_epi16(lo, lo, lo, lo, lo, lo, lo, lo, hi, hi, hi, hi, hi, hi, hi, hi));
}

static float AVX2 q6_k_avx2(const uint8_t *w, const sc_qrow *a, int n) {
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < n / 256; b++) {
        const uint8_t *blk = w + (size_t)b * 210;
        const int8_t *sc = (const int8_t *)(blk + 192), *y = a->qs + (size_t)b * 256;
        __m256i sumi = q6_k_offset(sc, a->bsums + (size_t)b * 16);
        #pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            __m256i v[4], s16 = q6_k_scales(sc, h);
            q6_k_unpack_avx2(blk, h, v);
            #pragma GCC unroll 4
            for (int k = 0; k < 4; k++) {
                __m256i yk = _mm256_loadu_si256((const __m256i *)(y + 128 * h + 32 * k));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(v[k], yk), q6_k_scale(s16, k)));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(f16_avx2(blk + 208) * a->d[b]), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum256(acc);
}

/* ---- K-quants, one weight row x 4 activation rows (as the 32-block ones
 * in qdot_x86_int.inc: each row the same bits as its single-row kernel) ---- */

/* Q4_K / Q5_K: the scales, mins, nibbles and fifth bits unpacked once */
static inline __attribute__((always_inline)) void AVX2 q45_k_x4_avx2(const uint8_t *w, const sc_qrow *a, int n, float *out,
                                                                     int five) {
    __m256 acc[4];
    __m128 mins[4];
    for (int r = 0; r < 4; r++) acc[r] = _mm256_setzero_ps(), mins[r] = _mm_setzero_ps();
    size_t ts = five ? 176 : 144;
    for (int b = 0; b < n / 256; b++) {
        const uint8_t *blk = w + (size_t)b * ts, *qh = blk + 16, *ql = five ? blk + 48 : blk + 16;
        __m128i sm = k4_scales_mins(blk + 4), mprod[4];
        for (int r = 0; r < 4; r++) mprod[r] = k4_min_prod(sm, a[r].bsums + (size_t)b * 16);
        __m256i s16 = k4_scales16(sm);
        __m256i hb = five ? _mm256_loadu_si256((const __m256i *)qh) : _mm256_setzero_si256();
        __m256i sumi[4];
        for (int r = 0; r < 4; r++) sumi[r] = _mm256_setzero_si256();
        #pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            __m256i lo, hi;
            q45_k_unpack_avx2(ql, hb, j, five, &lo, &hi);
            __m256i s0 = k4_scale(s16, 2 * j), s1 = k4_scale(s16, 2 * j + 1);
            #pragma GCC unroll 4
            for (int r = 0; r < 4; r++) {
                const int8_t *y = a[r].qs + (size_t)b * 256;
                __m256i y0 = _mm256_loadu_si256((const __m256i *)(y + 64 * j));
                __m256i y1 = _mm256_loadu_si256((const __m256i *)(y + 64 * j + 32));
                __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, y0), s0);
                __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, y1), s1);
                sumi[r] = _mm256_add_epi32(sumi[r], _mm256_add_epi32(p0, p1));
            }
        }
        float d = f16_avx2(blk), dmin = f16_avx2(blk + 2);
        #pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            float dy = a[r].d[b];
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d * dy), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
            mins[r] = _mm_fmadd_ps(_mm_set1_ps(dmin * dy), _mm_cvtepi32_ps(mprod[r]), mins[r]);
        }
    }
    for (int r = 0; r < 4; r++) out[r] = hsum256(acc[r]) - hsum128(mins[r]);
}

static void AVX2 q4_k_x4_avx2(const uint8_t *w, const sc_qrow *a, int n, float *out) { q45_k_x4_avx2(w, a, n, out, 0); }
static void AVX2 q5_k_x4_avx2(const uint8_t *w, const sc_qrow *a, int n, float *out) { q45_k_x4_avx2(w, a, n, out, 1); }

/* Q6_K: each half's 6-bit values unpacked once */
static void AVX2 q6_k_x4_avx2(const uint8_t *w, const sc_qrow *a, int n, float *out) {
    __m256 acc[4];
    for (int r = 0; r < 4; r++) acc[r] = _mm256_setzero_ps();
    for (int b = 0; b < n / 256; b++) {
        const uint8_t *blk = w + (size_t)b * 210;
        const int8_t *sc = (const int8_t *)(blk + 192);
        __m256i sumi[4];
        for (int r = 0; r < 4; r++) sumi[r] = q6_k_offset(sc, a[r].bsums + (size_t)b * 16);
        #pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            __m256i v[4], s16 = q6_k_scales(sc, h);
            q6_k_unpack_avx2(blk, h, v);
            #pragma GCC unroll 4
            for (int k = 0; k < 4; k++) {
                int e = 128 * h + 32 * k;
                __m256i scl = q6_k_scale(s16, k);
                #pragma GCC unroll 4
                for (int r = 0; r < 4; r++) {
                    __m256i yk = _mm256_loadu_si256((const __m256i *)(a[r].qs + (size_t)b * 256 + e));
                    sumi[r] = _mm256_add_epi32(sumi[r], _mm256_madd_epi16(_mm256_maddubs_epi16(v[k], yk), scl));
                }
            }
        }
        float d = f16_avx2(blk + 208);
        for (int r = 0; r < 4; r++)
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d * a[r].d[b]), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
    }
    for (int r = 0; r < 4; r++) out[r] = hsum256(acc[r]);
}
/* ---- float weights (F32, F16, BF16) ---- */

static float AVX2 f32_avx2(const uint8_t *w, const sc_qrow *a, int n) {
    __m256 acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8)
        acc = _mm256_fmadd_ps(_mm256_loadu_ps((const float *)(const void *)(w + 4 * (size_t)i)), _mm256_loadu_ps(a->f + i), acc);
    float s = hsum256(acc);
    for (; i < n; i++) {
        float v;
        memcpy(&v, w + 4 * (size_t)i, 4);
        s += v * a->f[i];
    }
    return s;
}

static float AVX2 f16_dot_avx2(const uint8_t *w, const sc_qrow *a, int n) {
    __m256 acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + 2 * (size_t)i)));
        acc = _mm256_fmadd_ps(v, _mm256_loadu_ps(a->f + i), acc);
    }
    float s = hsum256(acc);
    for (; i < n; i++) s += f16_avx2(w + 2 * (size_t)i) * a->f[i];
    return s;
}

static float AVX2 bf16_dot_avx2(const uint8_t *w, const sc_qrow *a, int n) {
    __m256 acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(w + 2 * (size_t)i)));
        __m256 v = _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
        acc = _mm256_fmadd_ps(v, _mm256_loadu_ps(a->f + i), acc);
    }
    float s = hsum256(acc);
    for (; i < n; i++) {
        uint16_t h;
        memcpy(&h, w + 2 * (size_t)i, 2);
        uint32_t u = (uint32_t)h << 16;
        float v;
        memcpy(&v, &u, 4);
        s += v * a->f[i];
    }
    return s;
}

/* ---- dequantisation of weight tiles for the sgemm path: the same
 * arithmetic as sc_dequant (multiply, then add; no FMA), so bit-equal ---- */

static inline void AVX2 store_u8x32(__m256i v, float d, float m, float *y, int sub) {
    __m256 dv = _mm256_set1_ps(d), mv = _mm256_set1_ps(m);
    __m128i lo = _mm256_castsi256_si128(v), hi = _mm256_extracti128_si256(v, 1);
    __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
    for (int k = 0; k < 4; k++) {
        __m256i i32 = _mm256_cvtepu8_epi32(parts[k]);
        if (sub) i32 = _mm256_sub_epi32(i32, _mm256_set1_epi32(sub));
        __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(i32), dv);
        _mm256_storeu_ps(y + 8 * k, sub ? f : _mm256_add_ps(f, mv));
    }
}

static void AVX2 dq_q4_1_avx2(const uint8_t *src, float *dst, size_t nb) {
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *blk = src + b * 20;
        store_u8x32(nibbles_avx2(blk + 4), f16_avx2(blk), f16_avx2(blk + 2), dst + 32 * b, 0);
    }
}

static void AVX2 dq_q4_0_avx2(const uint8_t *src, float *dst, size_t nb) {
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *blk = src + b * 18;
        store_u8x32(nibbles_avx2(blk + 2), f16_avx2(blk), 0, dst + 32 * b, 8);
    }
}

/* Q5_0: the nibbles with each element's fifth bit from qh, minus 16 */
static void AVX2 dq_q5_0_avx2(const uint8_t *src, float *dst, size_t nb) {
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *blk = src + b * 22;
        __m256i hi = _mm256_and_si256(bits_to_bytes_avx2(blk + 2), _mm256_set1_epi8(0x10));
        store_u8x32(_mm256_or_si256(nibbles_avx2(blk + 6), hi), f16_avx2(blk), 0, dst + 32 * b, 16);
    }
}

static void AVX2 dq_q8_0_avx2(const uint8_t *src, float *dst, size_t nb) {
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *blk = src + b * 34;
        __m256 dv = _mm256_set1_ps(f16_avx2(blk));
        for (int k = 0; k < 4; k++) {
            __m256i i32 = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(blk + 2 + 8 * k)));
            _mm256_storeu_ps(dst + 32 * b + 8 * k, _mm256_mul_ps(_mm256_cvtepi32_ps(i32), dv));
        }
    }
}

/* ---- K-quant tiles (256-element blocks). dq_q4_k / dq_q5_k in quant.c
 * compute d1 = d * s and m1 = dmin * m per 32-element sub-block as floats,
 * then d1 * x - m1 per element (multiply, then subtract); dq_q6_k computes
 * (d * sc) * x per element, its scale per 16 elements. Same here. ---- */

/* 32 unsigned bytes v -> y[i] = d * v[i] - m */
static inline void AVX2 store_k_u8x32(__m256i v, float d, float m, float *y) {
    __m256 dv = _mm256_set1_ps(d), mv = _mm256_set1_ps(m);
    __m128i lo = _mm256_castsi256_si128(v), hi = _mm256_extracti128_si256(v, 1);
    __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
    for (int k = 0; k < 4; k++) {
        __m256 f = _mm256_mul_ps(dv, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(parts[k])));
        _mm256_storeu_ps(y + 8 * k, _mm256_sub_ps(f, mv));
    }
}

/* Q4_K: {f16 d; f16 dmin; uint8 scales[12]; uint8 qs[128]}; Q5_K adds
 * qh[32] before qs: bit 2j (low nibbles) and 2j + 1 (high) of qh[l] is the
 * fifth bit of element l of the j-th 64 */
static inline void AVX2 dq_q45_k_avx2(const uint8_t *src, float *dst, size_t nb, int five) {
    const size_t ts = five ? 176 : 144;
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *blk = src + b * ts, *qh = blk + 16, *ql = five ? blk + 48 : blk + 16;
        float d = f16_avx2(blk), min = f16_avx2(blk + 2);
        float *y = dst + 256 * b;
        __m256i hb = five ? _mm256_loadu_si256((const __m256i *)qh) : _mm256_setzero_si256();
        uint8_t sm[16]; /* scales, then mins */
        _mm_storeu_si128((__m128i *)sm, k4_scales_mins(blk + 4));
        for (int j = 0; j < 4; j++) {
            float d1 = d * sm[2 * j], m1 = min * sm[8 + 2 * j];
            float d2 = d * sm[2 * j + 1], m2 = min * sm[8 + 2 * j + 1];
            __m256i lo, hi;
            q45_k_unpack_avx2(ql, hb, j, five, &lo, &hi);
            store_k_u8x32(lo, d1, m1, y + 64 * j);
            store_k_u8x32(hi, d2, m2, y + 64 * j + 32);
        }
    }
}

static void AVX2 dq_q4_k_avx2(const uint8_t *src, float *dst, size_t nb) { dq_q45_k_avx2(src, dst, nb, 0); }
static void AVX2 dq_q5_k_avx2(const uint8_t *src, float *dst, size_t nb) { dq_q45_k_avx2(src, dst, nb, 1); }

/* Q6_K: {uint8 ql[128]; uint8 qh[64]; int8 scales[16]; f16 d}; per half h,
 * element 32k + l (l < 32) is a nibble of ql with two bits of qh[l], minus
 * 32 (the 6-bit values as q6_k_avx2 builds them), scale sc[8h + 2k + l/16] */
static void AVX2 dq_q6_k_avx2(const uint8_t *src, float *dst, size_t nb) {
    const __m256i c32 = _mm256_set1_epi8(32);
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *blk = src + b * 210;
        const int8_t *sc = (const int8_t *)(blk + 192);
        float d = f16_avx2(blk + 208);
        for (int h = 0; h < 2; h++) {
            __m256i v[4];
            q6_k_unpack_avx2(blk, h, v);
            for (int k = 0; k < 4; k++) {
                float *y = dst + 256 * b + 128 * h + 32 * k;
                const int8_t *s = sc + 8 * h + 2 * k;
                __m256i x = _mm256_sub_epi8(v[k], c32); /* -32..31 */
                __m128i lo = _mm256_castsi256_si128(x), hi = _mm256_extracti128_si256(x, 1);
                __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
                for (int g = 0; g < 4; g++) {
                    __m256 ds = _mm256_set1_ps(d * s[g / 2]);
                    __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(parts[g]));
                    _mm256_storeu_ps(y + 8 * g, _mm256_mul_ps(ds, f));
                }
            }
        }
    }
}

sc_dequant_fn sc_dequant_avx2(int wtype);
sc_dequant_fn sc_dequant_avx2(int wtype) {
    switch (wtype) {
    case SC_GGML_Q4_1: return dq_q4_1_avx2;
    case SC_GGML_Q4_0: return dq_q4_0_avx2;
    case SC_GGML_Q5_0: return dq_q5_0_avx2;
    case SC_GGML_Q8_0: return dq_q8_0_avx2;
    case SC_GGML_Q4_K: return dq_q4_k_avx2;
    case SC_GGML_Q5_K: return dq_q5_k_avx2;
    case SC_GGML_Q6_K: return dq_q6_k_avx2;
    default: return NULL;
    }
}

/* ---- AVX-512 float kernels ---- */

static float AVX512 f32_avx512(const uint8_t *w, const sc_qrow *a, int n) {
    __m512 acc = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16)
        acc = _mm512_fmadd_ps(_mm512_loadu_ps((const void *)(w + 4 * (size_t)i)), _mm512_loadu_ps(a->f + i), acc);
    float s = _mm512_reduce_add_ps(acc);
    if (i < n) {
        sc_qrow t = *a;
        t.f += i;
        s += f32_avx2(w + 4 * (size_t)i, &t, n - i);
    }
    return s;
}

static float AVX512 f16_dot_avx512(const uint8_t *w, const sc_qrow *a, int n) {
    __m512 acc = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + 2 * (size_t)i)));
        acc = _mm512_fmadd_ps(v, _mm512_loadu_ps(a->f + i), acc);
    }
    float s = _mm512_reduce_add_ps(acc);
    if (i < n) {
        sc_qrow t = *a;
        t.f += i;
        s += f16_dot_avx2(w + 2 * (size_t)i, &t, n - i);
    }
    return s;
}

static float AVX512 bf16_dot_avx512(const uint8_t *w, const sc_qrow *a, int n) {
    __m512 acc = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i h = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(w + 2 * (size_t)i)));
        acc = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(h, 16)), _mm512_loadu_ps(a->f + i), acc);
    }
    float s = _mm512_reduce_add_ps(acc);
    if (i < n) {
        sc_qrow t = *a;
        t.f += i;
        s += bf16_dot_avx2(w + 2 * (size_t)i, &t, n - i);
    }
    return s;
}

/* ---- the gated activation (sc_glu) ---- */

/* exp(x), 8 lanes: x = n ln2 + r, |r| <= ln2/2, e^r by Cephes' expf
 * polynomial, times 2^n built in the exponent bits; x clamped to
 * [-87.3, 88.3] so 2^n stays a normal float (e^x saturates there, which
 * sigmoid does not notice) */
static inline __m256 AVX2 exp_avx2(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x); /* ln2 in two parts: exact n * hi */
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* sc_glu on the first n / 8 * 8 elements; returns how many it did */
size_t AVX2 sc_glu_avx2(float *g, const float *u, size_t n, int gelu) {
    const __m256 one = _mm256_set1_ps(1.0f), k2 = _mm256_set1_ps(2.0f * 0.79788456080286535588f);
    const __m256 c = _mm256_set1_ps(0.044715f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(g + i), a = x;
        if (gelu) a = _mm256_mul_ps(_mm256_mul_ps(k2, x), _mm256_fmadd_ps(_mm256_mul_ps(c, x), x, one));
        __m256 s = _mm256_div_ps(x, _mm256_add_ps(one, exp_avx2(_mm256_sub_ps(_mm256_setzero_ps(), a))));
        _mm256_storeu_ps(g + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
    }
    return i;
}

/* ---- bfloat16 tiles (AVX512_BF16) ---- */

void BF16 sc_bf16_round_avx512(const float *x, size_t n, uint16_t *out) {
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512bh h = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(x + i));
        _mm512_storeu_si512((void *)(out + i), (__m512i)h);
    }
    for (; i < n; i += 16) { /* the tail, 16 at a time under a mask */
        __mmask16 m = (__mmask16)(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
        __m256bh h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, x + i));
        _mm256_mask_storeu_epi16(out + i, m, (__m256i)h);
    }
}

/* The micro-kernel: NT groups of 16 packed activation rows (one zmm each
 * per pair p) x NR weight rows (each pair broadcast): NT x NR float
 * accumulators, vdpbf16ps adding x[2p+1] w[2p+1], then x[2p] w[2p], to each
 * lane in order of p. tmp[(i * 6 + j) * 16 + l] = row l of group i . w_j. */
#define BF16_KERNEL(NT, NR)                                                                                            \
    static void BF16 bf16_kernel_##NT##x##NR(const uint16_t *xp, size_t gstride, const uint16_t *wt, size_t IC, int P, \
                                             float *tmp) {                                                             \
        __m512 acc[NT][NR];                                                                                            \
        _Pragma("GCC unroll 8") for (int i = 0; i < NT; i++) _Pragma("GCC unroll 8") for (int j = 0; j < NR; j++)     \
            acc[i][j] = _mm512_setzero_ps();                                                                           \
        for (int p = 0; p < P; p++) {                                                                                  \
            __m512bh x[NT];                                                                                            \
            _Pragma("GCC unroll 8") for (int i = 0; i < NT; i++) x[i] =                                                \
                (__m512bh)_mm512_loadu_si512((const void *)(xp + i * gstride + (size_t)p * 32));                       \
            _Pragma("GCC unroll 8") for (int j = 0; j < NR; j++) {                                                     \
                int32_t pair;                                                                                          \
                memcpy(&pair, wt + j * IC + 2 * (size_t)p, 4);                                                         \
                __m512bh b = (__m512bh)_mm512_set1_epi32(pair);                                                        \
                _Pragma("GCC unroll 8") for (int i = 0; i < NT; i++) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], x[i], b); \
            }                                                                                                          \
        }                                                                                                              \
        _Pragma("GCC unroll 8") for (int i = 0; i < NT; i++) _Pragma("GCC unroll 8") for (int j = 0; j < NR; j++)     \
            _mm512_storeu_ps(tmp + (i * 6 + j) * 16, acc[i][j]);                                                       \
    }
#define BF16_KERNELS(NT)                                                                                               \
    BF16_KERNEL(NT, 1) BF16_KERNEL(NT, 2) BF16_KERNEL(NT, 3) BF16_KERNEL(NT, 4) BF16_KERNEL(NT, 5) BF16_KERNEL(NT, 6)
BF16_KERNELS(1)
BF16_KERNELS(2)
BF16_KERNELS(3)
BF16_KERNELS(4)

typedef void (*bf16_kernel_fn)(const uint16_t *, size_t, const uint16_t *, size_t, int, float *);
#define BF16_ROW(NT)                                                                                                   \
    {bf16_kernel_##NT##x1, bf16_kernel_##NT##x2, bf16_kernel_##NT##x3,                                                 \
     bf16_kernel_##NT##x4, bf16_kernel_##NT##x5, bf16_kernel_##NT##x6}
static const bf16_kernel_fn bf16_kernels[4][6] = {BF16_ROW(1), BF16_ROW(2), BF16_ROW(3), BF16_ROW(4)};

/* sc_bf16_tile_fn: blocks of 6 weight rows x 4 groups of 16 activation rows
 * (24 accumulators; the 6 rows' pairs stay in L1 while the groups stream
 * from L2), smaller at the edges */
static void BF16 bf16_tile_avx512(const uint16_t *xp, int T, const uint16_t *wt, int R, int IC, float *out, size_t ldo) {
    int P = IC / 2, G = (T + 15) / 16;
    size_t gstride = (size_t)P * 32;
    float tmp[4 * 6 * 16];
    for (int r0 = 0; r0 < R; r0 += 6) {
        int nr = R - r0 < 6 ? R - r0 : 6;
        for (int g0 = 0; g0 < G; g0 += 4) {
            int ng = G - g0 < 4 ? G - g0 : 4;
            bf16_kernels[ng - 1][nr - 1](xp + g0 * gstride, gstride, wt + (size_t)r0 * IC, (size_t)IC, P, tmp);
            for (int i = 0; i < ng; i++)
                for (int l = 0; l < 16 && 16 * (g0 + i) + l < T; l++) {
                    float *o = out + (size_t)(16 * (g0 + i) + l) * ldo + r0;
                    for (int j = 0; j < nr; j++) o[j] = tmp[(i * 6 + j) * 16 + l];
                }
        }
    }
}

sc_bf16_tile_fn sc_bf16_tile_avx512(void) { return bf16_tile_avx512; }

/* ---- 8-bit integer tiles (AVX512_VNNI) ---- */

/* sc_i8_unpack on AVX2: x32_avx2's signed block values + off as bytes */
int AVX2 sc_i8_unpack_avx2(const sc_qtensor *w, int r0, int R, uint8_t *u, float *d) {
    int NB = w->cols / 32, off = w->type == SC_GGML_Q8_0 ? 128 : w->type == SC_GGML_Q4_0 ? 8 : 16;
    size_t bs = w->type == SC_GGML_Q8_0 ? 34 : w->type == SC_GGML_Q4_0 ? 18 : 22;
    __m256i o = _mm256_set1_epi8((char)off);
    for (int r = 0; r < R; r++) {
        const uint8_t *row = w->data + (size_t)(r0 + r) * w->row_bytes;
        for (int b = 0; b < NB; b++) {
            const uint8_t *blk = row + (size_t)b * bs;
            _mm256_storeu_si256((__m256i *)(u + (size_t)r * w->cols + 32 * (size_t)b),
                                _mm256_add_epi8(x32_avx2(w->type, blk), o));
            d[(size_t)r * NB + b] = f16_avx2(blk);
        }
    }
    return off;
}

/* The micro-kernel: NT groups of 16 tokens x NR weight rows. Per block,
 * NT x NR int32 accumulators start at -off * (the token's block sum) and
 * take 8 vpdpbusd (4 weight bytes broadcast x 4 activation bytes per lane);
 * then acc = fma(float(isum), d_w * d_x, acc) per lane, as the plain C
 * twin. o[j * ldt + 16 i + l] = token l of group i . row j. */
#define I8_KERNEL(NT, NR)                                                                                              \
    static void VNNI i8_kernel_##NT##x##NR(const int8_t *xq, size_t gq, const float *xd, const int32_t *xs, size_t gs, \
                                           const uint8_t *u, size_t IC, const float *wd, int NB, int off, float *o, size_t ldt) { \
        __m512 acc[NT][NR];                                                                                            \
        _Pragma("GCC unroll 8") for (int i = 0; i < NT; i++) _Pragma("GCC unroll 8") for (int j = 0; j < NR; j++)     \
            acc[i][j] = _mm512_setzero_ps();                                                                           \
        const __m512i noff = _mm512_set1_epi32(-off);                                                                  \
        for (int b = 0; b < NB; b++) {                                                                                 \
            __m512i ia[NT][NR];                                                                                        \
            _Pragma("GCC unroll 8") for (int i = 0; i < NT; i++) {                                                     \
                __m512i c = _mm512_mullo_epi32(_mm512_loadu_si512((const void *)(xs + i * gs + 16 * (size_t)b)), noff); \
                _Pragma("GCC unroll 8") for (int j = 0; j < NR; j++) ia[i][j] = c;                                     \
            }                                                                                                          \
            _Pragma("GCC unroll 8") for (int p = 8 * b; p < 8 * b + 8; p++) {                                          \
                __m512i x[NT];                                                                                         \
                _Pragma("GCC unroll 8") for (int i = 0; i < NT; i++) x[i] =                                            \
                    _mm512_loadu_si512((const void *)(xq + i * gq + (size_t)p * 64));                                  \
                _Pragma("GCC unroll 8") for (int j = 0; j < NR; j++) {                                                 \
                    int32_t quad;                                                                                      \
                    memcpy(&quad, u + j * IC + 4 * (size_t)p, 4);                                                      \
                    __m512i wv = _mm512_set1_epi32(quad);                                                              \
                    _Pragma("GCC unroll 8") for (int i = 0; i < NT; i++) ia[i][j] =                                    \
                        _mm512_dpbusd_epi32(ia[i][j], wv, x[i]);                                                       \
                }                                                                                                      \
            }                                                                                                          \
            _Pragma("GCC unroll 8") for (int j = 0; j < NR; j++) {                                                     \
                __m512 dw = _mm512_set1_ps(wd[(size_t)j * NB + b]);                                                    \
                _Pragma("GCC unroll 8") for (int i = 0; i < NT; i++) {                                                 \
                    __m512 dx = _mm512_loadu_ps(xd + i * gs + 16 * (size_t)b);                                         \
                    acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia[i][j]), _mm512_mul_ps(dw, dx), acc[i][j]);       \
                }                                                                                                      \
            }                                                                                                          \
        }                                                                                                              \
        _Pragma("GCC unroll 8") for (int i = 0; i < NT; i++) _Pragma("GCC unroll 8") for (int j = 0; j < NR; j++)     \
            _mm512_storeu_ps(o + j * ldt + i * 16, acc[i][j]);                                                        \
    }
#define I8_KERNELS(NT) I8_KERNEL(NT, 1) I8_KERNEL(NT, 2) I8_KERNEL(NT, 3)
I8_KERNELS(1)
I8_KERNELS(2)
I8_KERNELS(3)
I8_KERNELS(4)

typedef void (*i8_kernel_fn)(const int8_t *, size_t, const float *, const int32_t *, size_t, const uint8_t *, size_t,
                             const float *, int, int, float *, size_t);
#define I8_ROW(NT) {i8_kernel_##NT##x1, i8_kernel_##NT##x2, i8_kernel_##NT##x3}
static const i8_kernel_fn i8_kernels[4][3] = {I8_ROW(1), I8_ROW(2), I8_ROW(3), I8_ROW(4)};

/* 16 rows of 16 floats (src[i * lds + t]) transposed: dst[t * ldd + i]
 * for t < nt (unpack, 64-bit shuffles, then 128-bit lanes) */
static inline void AVX512 transpose16(const float *src, size_t lds, float *dst, size_t ldd, int nt) {
    __m512 r[16], t[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + i * lds);
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) { /* r[4i + k]: rows 4i..4i+3 at token 4L + k in lane L */
        r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    for (int k = 0; k < 4; k++) {
        __m512 s0 = _mm512_shuffle_f32x4(r[k], r[4 + k], 0x44), s1 = _mm512_shuffle_f32x4(r[k], r[4 + k], 0xEE);
        __m512 s2 = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0x44), s3 = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0xEE);
        t[k] = _mm512_shuffle_f32x4(s0, s2, 0x88);
        t[4 + k] = _mm512_shuffle_f32x4(s0, s2, 0xDD);
        t[8 + k] = _mm512_shuffle_f32x4(s1, s3, 0x88);
        t[12 + k] = _mm512_shuffle_f32x4(s1, s3, 0xDD);
    }
    for (int i = 0; i < nt; i++) _mm512_storeu_ps(dst + i * ldd, t[i]);
}

/* sc_i8_tile_fn: chunks of 48 weight rows x 256 tokens; in a chunk, blocks
 * of 3 rows (in L1) x 4 groups of 16 tokens (streaming from L2) write
 * rows of tokens into ob, which 16 x 16 transposes then move to out */
enum { I8_CR = 48, I8_CG = 16 };
static void VNNI i8_tile_avx512(const sc_i8_act *a, const uint8_t *u, const float *d, int off, int R, float *out,
                                size_t ldo) {
    int IC = a->IC, NB = a->NB, G = a->G;
    size_t gq = (size_t)IC * 16, gs = (size_t)NB * 16, ldt = 16 * I8_CG;
    float ob[I8_CR * 16 * I8_CG]; /* [row][token] of a chunk */
    for (int c0 = 0; c0 < R; c0 += I8_CR) {
        int cr = R - c0 < I8_CR ? R - c0 : I8_CR;
        for (int h0 = 0; h0 < G; h0 += I8_CG) {
            int cg = G - h0 < I8_CG ? G - h0 : I8_CG;
            for (int r0 = c0; r0 < c0 + cr; r0 += 3) {
                int nr = c0 + cr - r0 < 3 ? c0 + cr - r0 : 3;
                for (int g0 = h0; g0 < h0 + cg; g0 += 4) {
                    int ng = h0 + cg - g0 < 4 ? h0 + cg - g0 : 4;
                    i8_kernels[ng - 1][nr - 1](a->q + g0 * gq, gq, a->d + g0 * gs, a->s + g0 * gs, gs, u + (size_t)r0 * IC,
                                               (size_t)IC, d + (size_t)r0 * NB, NB, off, ob + (size_t)(r0 - c0) * ldt + 16 * (g0 - h0),
                                               ldt);
                }
            }
            int t0 = 16 * h0, nt = a->T - t0 < 16 * cg ? a->T - t0 : 16 * cg, j = 0;
            for (; j + 16 <= cr; j += 16)
                for (int t = 0; t < nt; t += 16)
                    transpose16(ob + (size_t)j * ldt + t, ldt, out + (size_t)(t0 + t) * ldo + c0 + j, ldo, nt - t < 16 ? nt - t : 16);
            for (; j < cr; j++) /* rows past the last 16 */
                for (int t = 0; t < nt; t++) out[(size_t)(t0 + t) * ldo + c0 + j] = ob[(size_t)j * ldt + t];
        }
    }
}

sc_i8_tile_fn sc_i8_tile_avx512_vnni(void) { return i8_tile_avx512; }

/* ---- the Q8_0 / Q8_1 activation quantiser of one 32-block ----
 * as the plain loop of sc_qact_quantize: amax = max |x|, q = round to
 * nearest even of x * (127 / amax) (0 when amax is 0); returns amax, *sum
 * = the sum of q */
float AVX2 sc_q8_block_avx2(const float *x, int8_t *q, int *sum) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 v[4], m = _mm256_setzero_ps();
    for (int i = 0; i < 4; i++) {
        v[i] = _mm256_loadu_ps(x + 8 * i);
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v[i]));
    }
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    float amax = _mm_cvtss_f32(h), id = amax != 0 ? 127.f / amax : 0.f;
    __m256 vid = _mm256_set1_ps(id);
    __m256i qi[4];
    for (int i = 0; i < 4; i++)
        qi[i] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[i], vid), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    __m256i s = _mm256_add_epi32(_mm256_add_epi32(qi[0], qi[1]), _mm256_add_epi32(qi[2], qi[3]));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
    *sum = _mm_cvtsi128_si32(s4);
    /* int32 -> int8 in order: packs work per 128-bit lane, a permute restores it */
    __m256i p16 = _mm256_packs_epi32(qi[0], qi[1]), p16b = _mm256_packs_epi32(qi[2], qi[3]);
    __m256i p8 = _mm256_packs_epi16(p16, p16b);
    p8 = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)q, p8);
    return amax;
}

/* ---- half-precision rows (F16C): all but a tail of < 8 ---- */

size_t AVX2 sc_f16_round_avx2(const float *x, size_t n, uint16_t *out) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(out + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    return i;
}

size_t AVX2 sc_f16_widen_avx2(const uint16_t *h, size_t n, float *out) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
    return i;
}

sc_qdot_fn sc_qdot_avx2(int wtype, int vnni) {
    if (vnni) return qdot_int_avx2_vnni(wtype);
    switch (wtype) {
    case SC_GGML_F32: return f32_avx2;
    case SC_GGML_F16: return f16_dot_avx2;
    case SC_GGML_BF16: return bf16_dot_avx2;
    case SC_GGML_Q4_K: return q4_k_avx2;
    case SC_GGML_Q5_K: return q5_k_avx2;
    case SC_GGML_Q6_K: return q6_k_avx2;
    default: return qdot_int_avx2(wtype);
    }
}

sc_qdot_fn sc_qdot_avx512(int wtype, int vnni) {
    if (vnni) return qdot_int_avx512_vnni(wtype);
    switch (wtype) {
    case SC_GGML_F32: return f32_avx512;
    case SC_GGML_F16: return f16_dot_avx512;
    case SC_GGML_BF16: return bf16_dot_avx512;
    default: return qdot_int_avx512(wtype);
    }
}

sc_qdot4_fn sc_qdot4_avx2(int wtype, int vnni) {
    if (vnni) return qdot4_int_avx2_vnni(wtype);
    switch (wtype) {
    case SC_GGML_Q4_K: return q4_k_x4_avx2;
    case SC_GGML_Q5_K: return q5_k_x4_avx2;
    case SC_GGML_Q6_K: return q6_k_x4_avx2;
    default: return qdot4_int_avx2(wtype);
    }
}

sc_qdot4_fn sc_qdot4_avx512(int wtype, int vnni) { return vnni ? qdot4_int_avx512_vnni(wtype) : qdot4_int_avx512(wtype); }

#else
size_t sc_glu_avx2(float *g, const float *u, size_t n, int gelu) { (void)g; (void)u; (void)n; (void)gelu; return 0; }
sc_bf16_tile_fn sc_bf16_tile_avx512(void) { return NULL; }
sc_i8_tile_fn sc_i8_tile_avx512_vnni(void) { return NULL; }
size_t sc_f16_round_avx2(const float *x, size_t n, uint16_t *out) { (void)x; (void)n; (void)out; return 0; }
float sc_q8_block_avx2(const float *x, int8_t *q, int *sum) { (void)x; (void)q; *sum = 0; return 0; }
size_t sc_f16_widen_avx2(const uint16_t *h, size_t n, float *out) { (void)h; (void)n; (void)out; return 0; }
int sc_i8_unpack_avx2(const sc_qtensor *w, int r0, int R, uint8_t *u, float *d) {
    (void)w; (void)r0; (void)R; (void)u; (void)d;
    return -1;
}
void sc_bf16_round_avx512(const float *x, size_t n, uint16_t *out) { (void)x; (void)n; (void)out; }
sc_qdot4_fn sc_qdot4_avx2(int wtype, int vnni) { (void)wtype; (void)vnni; return NULL; }
sc_qdot4_fn sc_qdot4_avx512(int wtype, int vnni) { (void)wtype; (void)vnni; return NULL; }
sc_dequant_fn sc_dequant_avx2(int wtype);
sc_dequant_fn sc_dequant_avx2(int wtype) { (void)wtype; return NULL; }
sc_qdot_fn sc_qdot_avx2(int wtype, int vnni) { (void)wtype; (void)vnni; return NULL; }
sc_qdot_fn sc_qdot_avx512(int wtype, int vnni) { (void)wtype; (void)vnni; return NULL; }
#endif
