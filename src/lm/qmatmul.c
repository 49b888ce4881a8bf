/* Quantised matrix products: activation quantisers, plain C dot products
 * (the reference the SIMD kernels are tested against), run-time dispatch and
 * the tiled, threaded matmul. Block layouts as ggml (ggml-common.h); the
 * activation quantisers follow ggml's quantize_row_q8_{0,1,K}.
 *
 * Dimension letters: T tokens, IC input width, OC output rows, NB blocks. */
#include "lm/qmatmul.h"

#include <cblas.h>
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "base/alloc.h"
#include "lm/quant.h"
#include "lm/safetensors.h" /* sc_f16_to_f32, sc_bf16_to_f32 */

/* SIMD kernels (qdot_x86.c); NULL when not built for this target */
sc_qdot_fn sc_qdot_avx2(int wtype, int vnni);
sc_qdot_fn sc_qdot_avx512(int wtype, int vnni);
sc_qdot4_fn sc_qdot4_avx2(int wtype, int vnni);
sc_qdot4_fn sc_qdot4_avx512(int wtype, int vnni);
sc_dequant_fn sc_dequant_avx2(int wtype);
sc_bf16_tile_fn sc_bf16_tile_avx512(void);
size_t sc_glu_avx2(float *g, const float *u, size_t n, int gelu);
void sc_bf16_round_avx512(const float *x, size_t n, uint16_t *out);
sc_i8_tile_fn sc_i8_tile_avx512_vnni(void);
size_t sc_f16_round_avx2(const float *x, size_t n, uint16_t *out);
float sc_q8_block_avx2(const float *x, int8_t *q, int *sum);
size_t sc_f16_widen_avx2(const uint16_t *h, size_t n, float *out);
int sc_i8_unpack_avx2(const sc_qtensor *w, int r0, int R, uint8_t *u, float *d);

/* ---- helpers ---- */

static float h16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return sc_f16_to_f32(h);
}

/* float -> fp16 bits, round to nearest even (as F16C and ggml do) */
uint16_t sc_f16_of(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = x & 0x80000000u, ax = x & 0x7fffffffu;
    uint16_t h;
    if (ax >= 0x7f800000u) h = (uint16_t)(ax > 0x7f800000u ? 0x7e00 : 0x7c00);
    else if (ax >= 0x477ff000u) h = 0x7c00; /* rounds to >= 65520: inf */
    else if (ax < 0x38800000u) {             /* fp16 subnormal or zero */
        float a;
        memcpy(&a, &ax, 4);
        h = (uint16_t)nearbyintf(a * 16777216.0f); /* units of 2^-24 */
    } else {
        uint32_t r = ax + 0x00000fffu + ((ax >> 13) & 1); /* RNE on the 13 dropped bits */
        h = (uint16_t)((r - 0x38000000u) >> 13);
    }
    return (uint16_t)(h | (sign >> 16));
}

/* float -> fp16 -> float, so activation scales carry exactly the precision
 * llama.cpp gives them. */
static float round_f16(float f) { return sc_f16_to_f32(sc_f16_of(f)); }

void sc_f16_round(const float *x, size_t n, uint16_t *out) {
    size_t i = sc_isa_available(SC_ISA_AVX2) ? sc_f16_round_avx2(x, n, out) : 0;
    for (; i < n; i++) out[i] = sc_f16_of(x[i]);
}

void sc_f16_widen(const uint16_t *h, size_t n, float *out) {
    size_t i = sc_isa_available(SC_ISA_AVX2) ? sc_f16_widen_avx2(h, n, out) : 0;
    for (; i < n; i++) out[i] = sc_f16_to_f32(h[i]);
}

/* every type sc_dequant reads has plain C dot products (sc_qdot_get) */
int sc_qmatmul_supported(int type) { return sc_dequant_supported(type); }

int sc_qtensor_from_gguf(sc_qtensor *w, const sc_gguf_tensor *t, const char *file, sc_error *err) {
    if (!sc_qmatmul_supported(t->type))
        return sc_fail(err, SC_EFORMAT, "%s: tensor '%s' has type %s, which semctr cannot multiply", file, t->name,
                       sc_ggml_type_name(t->type));
    if (t->ne[2] != 1 || t->ne[3] != 1 || t->ne[0] == 0 || t->ne[0] > (1u << 24) || t->ne[1] > (1u << 24))
        return sc_fail(err, SC_EFORMAT, "%s: tensor '%s' is not a 2-D matrix of sane size", file, t->name);
    int bs = sc_ggml_block_size(t->type);
    if (t->ne[0] % (uint64_t)bs)
        return sc_fail(err, SC_EFORMAT, "%s: tensor '%s': %llu columns is not a multiple of the %s block size %d", file,
                       t->name, (unsigned long long)t->ne[0], sc_ggml_type_name(t->type), bs);
    w->type = t->type;
    w->cols = (int)t->ne[0];
    w->rows = (int)t->ne[1];
    w->row_bytes = (size_t)(w->cols / bs) * (size_t)sc_ggml_type_size(t->type);
    if ((uint64_t)w->row_bytes * (uint64_t)w->rows > t->nbytes)
        return sc_fail(err, SC_EFORMAT, "%s: tensor '%s' holds %llu bytes, fewer than its %d x %d %s elements need", file,
                       t->name, (unsigned long long)t->nbytes, w->rows, w->cols, sc_ggml_type_name(t->type));
    w->data = t->data;
    return SC_OK;
}

void sc_qtensor_row(const sc_qtensor *w, int r, float *out) {
    /* the type and size were checked when the tensor was wrapped */
    sc_dequant(w->type, w->data + (size_t)r * w->row_bytes, out, (size_t)w->cols, NULL, NULL);
}

/* ---- activation quantisers ---- */

int sc_qact_type(int wtype) {
    switch (wtype) {
    case SC_GGML_Q8_0: case SC_GGML_Q4_0: case SC_GGML_Q5_0: return SC_GGML_Q8_0;
    case SC_GGML_Q4_1: case SC_GGML_Q5_1: return SC_GGML_Q8_1;
    case SC_GGML_Q4_K: case SC_GGML_Q5_K: case SC_GGML_Q6_K: return SC_GGML_Q8_K;
    default: return SC_GGML_F32;
    }
}

size_t sc_qact_bytes(int atype, int n) {
    switch (atype) {
    case SC_GGML_Q8_0: case SC_GGML_Q8_1: return (size_t)(n / 32) * 8 + (size_t)n;
    case SC_GGML_Q8_K: return (size_t)(n / 256) * (4 + 32) + (size_t)n;
    default: return 0;
    }
}

void sc_qact_quantize(int atype, const float *x, int n, void *buf, sc_qrow *row) {
    memset(row, 0, sizeof *row);
    if (atype == SC_GGML_F32) {
        row->f = x;
        return;
    }
    if (atype == SC_GGML_Q8_K) {
        int nb = n / 256;
        float *d = buf;
        int16_t *bsums = (int16_t *)(d + nb);
        int8_t *qs = (int8_t *)(bsums + nb * 16);
        for (int b = 0; b < nb; b++) {
            const float *xb = x + (size_t)b * 256;
            int8_t *q = qs + (size_t)b * 256;
            float amax = 0, mx = 0;
            for (int j = 0; j < 256; j++) {
                float ax = fabsf(xb[j]);
                if (ax > amax) { amax = ax; mx = xb[j]; }
            }
            if (amax == 0) {
                d[b] = 0;
                memset(q, 0, 256);
                memset(bsums + b * 16, 0, 32);
                continue;
            }
            /* ggml quantize_row_q8_K_ref: the largest magnitude maps to -127 */
            float iscale = -127.f / mx;
            for (int j = 0; j < 256; j++) {
                int v = (int)nearbyintf(iscale * xb[j]);
                q[j] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
            }
            for (int k = 0; k < 16; k++) {
                int s = 0;
                for (int j = 0; j < 16; j++) s += q[k * 16 + j];
                bsums[b * 16 + k] = (int16_t)s;
            }
            d[b] = 1 / iscale;
        }
        row->d = d;
        row->bsums = bsums;
        row->qs = qs;
        return;
    }
    /* Q8_0 / Q8_1: 32-blocks, scale amax/127 stored as fp16 (ggml's AVX2
     * quantize_row_q8_{0,1}: multiply by 127/amax, round to nearest even) */
    int nb = n / 32;
    float *d = buf, *s = d + nb;
    int8_t *qs = (int8_t *)(s + nb);
    int avx2 = sc_isa_available(SC_ISA_AVX2);
    for (int b = 0; b < nb; b++) {
        if (avx2) { /* the same bits, 8 lanes at a time */
            int sum;
            float amax = sc_q8_block_avx2(x + (size_t)b * 32, qs + (size_t)b * 32, &sum);
            d[b] = round_f16(amax / 127.f);
            s[b] = atype == SC_GGML_Q8_1 ? round_f16(amax / 127.f * (float)sum) : 0.f;
            continue;
        }
        const float *xb = x + (size_t)b * 32;
        int8_t *q = qs + (size_t)b * 32;
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(xb[j]));
        float id = amax != 0 ? 127.f / amax : 0.f;
        int sum = 0;
        for (int j = 0; j < 32; j++) {
            q[j] = (int8_t)nearbyintf(xb[j] * id);
            sum += q[j];
        }
        float db = amax / 127.f;
        d[b] = round_f16(db);
        s[b] = atype == SC_GGML_Q8_1 ? round_f16(db * (float)sum) : 0.f;
    }
    row->d = d;
    row->s = s;
    row->qs = qs;
}

/* ---- plain C dot products: integer sums per block, exact; the float
 * combination per block as ggml's generic kernels ---- */

static float dot_q8_0(const uint8_t *w, const sc_qrow *a, int n) {
    float sum = 0;
    for (int b = 0; b < n / 32; b++) {
        const uint8_t *blk = w + (size_t)b * 34;
        const int8_t *q = (const int8_t *)(blk + 2), *y = a->qs + (size_t)b * 32;
        int s = 0;
        for (int j = 0; j < 32; j++) s += q[j] * y[j];
        sum += (float)s * (h16(blk) * a->d[b]);
    }
    return sum;
}

static float dot_q4_0(const uint8_t *w, const sc_qrow *a, int n) {
    float sum = 0;
    for (int b = 0; b < n / 32; b++) {
        const uint8_t *blk = w + (size_t)b * 18, *q = blk + 2;
        const int8_t *y = a->qs + (size_t)b * 32;
        int s = 0;
        for (int j = 0; j < 16; j++) s += ((q[j] & 15) - 8) * y[j] + ((q[j] >> 4) - 8) * y[j + 16];
        sum += (float)s * (h16(blk) * a->d[b]);
    }
    return sum;
}

static float dot_q4_1(const uint8_t *w, const sc_qrow *a, int n) {
    float sum = 0;
    for (int b = 0; b < n / 32; b++) {
        const uint8_t *blk = w + (size_t)b * 20, *q = blk + 4;
        const int8_t *y = a->qs + (size_t)b * 32;
        int s = 0;
        for (int j = 0; j < 16; j++) s += (q[j] & 15) * y[j] + (q[j] >> 4) * y[j + 16];
        sum += (float)s * (h16(blk) * a->d[b]) + h16(blk + 2) * a->s[b];
    }
    return sum;
}

/* Q5_0 {f16 d; u32 qh; u8 qs[16]}: element j's fifth bit is bit j of qh
 * (low nibbles j < 16, high nibbles j + 16), values offset by 16. Q5_1
 * {f16 d; f16 m; qh; qs}: unsigned, plus m (times the block sum of y). */
static float dot_q5(const uint8_t *w, const sc_qrow *a, int n, int with_min) {
    float sum = 0;
    size_t bsz = with_min ? 24 : 22;
    int off = with_min ? 0 : 16;
    for (int b = 0; b < n / 32; b++) {
        const uint8_t *blk = w + (size_t)b * bsz, *p = blk + (with_min ? 4 : 2), *q = p + 4;
        uint32_t qh;
        memcpy(&qh, p, 4);
        const int8_t *y = a->qs + (size_t)b * 32;
        int s = 0;
        for (int j = 0; j < 16; j++) {
            int x0 = (int)((q[j] & 15) | ((qh >> j & 1) << 4)) - off;
            int x1 = (int)((q[j] >> 4) | ((qh >> (j + 16) & 1) << 4)) - off;
            s += x0 * y[j] + x1 * y[j + 16];
        }
        sum += (float)s * (h16(blk) * a->d[b]);
        if (with_min) sum += h16(blk + 2) * a->s[b];
    }
    return sum;
}
static float dot_q5_0(const uint8_t *w, const sc_qrow *a, int n) { return dot_q5(w, a, n, 0); }
static float dot_q5_1(const uint8_t *w, const sc_qrow *a, int n) { return dot_q5(w, a, n, 1); }

/* Q4_K / Q5_K: 8 sub-blocks of 32 with 6-bit scales and mins:
 * sum = d*dy*sum_j sc_j*(q.y)_j - dmin*dy*sum_j m_j*sum(y)_j */
static float dot_q45_k(const uint8_t *w, const sc_qrow *a, int n, int five) {
    float sum = 0;
    size_t ts = five ? 176 : 144;
    for (int b = 0; b < n / 256; b++) {
        const uint8_t *blk = w + (size_t)b * ts, *sc = blk + 4;
        const uint8_t *qh = blk + 16, *ql = five ? blk + 48 : blk + 16;
        const int8_t *y = a->qs + (size_t)b * 256;
        const int16_t *bs = a->bsums + (size_t)b * 16;
        int isum = 0, msum = 0;
        for (int j = 0; j < 8; j++) {
            uint8_t s, m;
            sc_q_scale_min_k4(j, sc, &s, &m);
            const uint8_t *q = ql + (j / 2) * 32;
            int shift = (j & 1) * 4, dot = 0;
            for (int l = 0; l < 32; l++) {
                int v = (q[l] >> shift) & 15;
                if (five && (qh[l] >> j & 1)) v += 16;
                dot += v * y[j * 32 + l];
            }
            isum += s * dot;
            msum += m * (bs[2 * j] + bs[2 * j + 1]);
        }
        float dy = a->d[b];
        sum += h16(blk) * dy * (float)isum - h16(blk + 2) * dy * (float)msum;
    }
    return sum;
}

static float dot_q4_k(const uint8_t *w, const sc_qrow *a, int n) { return dot_q45_k(w, a, n, 0); }
static float dot_q5_k(const uint8_t *w, const sc_qrow *a, int n) { return dot_q45_k(w, a, n, 1); }

/* Q6_K: {ql[128], qh[64], int8 scales[16], f16 d}; element e has scale e/16 */
static float dot_q6_k(const uint8_t *w, const sc_qrow *a, int n) {
    float sum = 0;
    for (int b = 0; b < n / 256; b++) {
        const uint8_t *blk = w + (size_t)b * 210, *ql = blk, *qh = blk + 128;
        const int8_t *sc = (const int8_t *)(blk + 192), *y = a->qs + (size_t)b * 256;
        int8_t v[256];
        for (int h = 0; h < 2; h++) {
            const uint8_t *l0 = ql + h * 64, *h0 = qh + h * 32;
            int8_t *o = v + h * 128;
            for (int l = 0; l < 32; l++) {
                o[l] = (int8_t)(((l0[l] & 15) | ((h0[l] & 3) << 4)) - 32);
                o[l + 32] = (int8_t)(((l0[l + 32] & 15) | (((h0[l] >> 2) & 3) << 4)) - 32);
                o[l + 64] = (int8_t)(((l0[l] >> 4) | (((h0[l] >> 4) & 3) << 4)) - 32);
                o[l + 96] = (int8_t)(((l0[l + 32] >> 4) | (((h0[l] >> 6) & 3) << 4)) - 32);
            }
        }
        int isum = 0;
        for (int k = 0; k < 16; k++) {
            int dot = 0;
            for (int l = 0; l < 16; l++) dot += v[k * 16 + l] * y[k * 16 + l];
            isum += sc[k] * dot;
        }
        sum += h16(blk + 208) * a->d[b] * (float)isum;
    }
    return sum;
}

static float dot_f32(const uint8_t *w, const sc_qrow *a, int n) {
    const float *x = a->f;
    float sum = 0;
    for (int i = 0; i < n; i++) {
        float v;
        memcpy(&v, w + 4 * (size_t)i, 4);
        sum += v * x[i];
    }
    return sum;
}

static float dot_f16(const uint8_t *w, const sc_qrow *a, int n) {
    float sum = 0;
    for (int i = 0; i < n; i++) sum += h16(w + 2 * (size_t)i) * a->f[i];
    return sum;
}

static float dot_bf16(const uint8_t *w, const sc_qrow *a, int n) {
    float sum = 0;
    for (int i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, w + 2 * (size_t)i, 2);
        sum += sc_bf16_to_f32(h) * a->f[i];
    }
    return sum;
}

/* ---- dispatch ---- */

/* Bit ISA_VNNI of detect_isas: AVX512_VNNI and AVX512VL on top of
 * SC_ISA_AVX512. Not an instruction-set level of its own: it picks the VNNI
 * variants of the AVX2 and AVX-512 integer kernels (the same bits). */
#define ISA_VNNI 8
/* Bit ISA_BF16: AVX512_BF16 and AVX512VL on top of SC_ISA_AVX512 */
#define ISA_BF16 16

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>

/* bit ISA set when the CPU has the instructions and the OS saves their
 * registers (XGETBV); cpuid directly, because clang 14's
 * __builtin_cpu_supports does not know "f16c" */
static int detect_isas(void) {
    unsigned a, b, c, d;
    int isas = 1 << SC_ISA_PLAIN;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return isas;
    int fma = c >> 12 & 1, osxsave = c >> 27 & 1, avx = c >> 28 & 1, f16c = c >> 29 & 1;
    if (!osxsave || !avx) return isas;
    unsigned xlo, xhi;
    __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    if ((xlo & 6) != 6) return isas; /* SSE and AVX state */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return isas;
    int avx2 = b >> 5 & 1, avx512f = b >> 16 & 1, avx512bw = b >> 30 & 1;
    if (avx2 && fma && f16c) isas |= 1 << SC_ISA_AVX2;
    if ((isas & 1 << SC_ISA_AVX2) && avx512f && avx512bw && (xlo & 0xe0) == 0xe0) isas |= 1 << SC_ISA_AVX512;
    int avx512vl = b >> 31 & 1, avx512vnni = c >> 11 & 1;
    if ((isas & 1 << SC_ISA_AVX512) && avx512vl && avx512vnni) isas |= 1 << ISA_VNNI;
    if ((isas & 1 << SC_ISA_AVX512) && avx512vl && __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a >> 5 & 1))
        isas |= 1 << ISA_BF16;
    return isas;
}
#else
static int detect_isas(void) { return 1 << SC_ISA_PLAIN; }
#endif

static int cpu_isas(void) {
    static atomic_int cached = -1; /* cpuid traps in some VMs: ask once */
    int isas = atomic_load_explicit(&cached, memory_order_relaxed);
    if (isas < 0) atomic_store_explicit(&cached, isas = detect_isas(), memory_order_relaxed);
    return isas;
}

int sc_isa_available(int isa) { return isa >= 0 && isa < SC_ISA_N && (cpu_isas() >> isa & 1); }

int sc_cpu_has_vnni(void) { return cpu_isas() >> ISA_VNNI & 1; }

int sc_cpu_has_bf16(void) { return cpu_isas() >> ISA_BF16 & 1; }

const char *sc_isa_name(int isa) {
    static const char *names[] = {"plain C", "AVX2", "AVX-512"};
    return isa >= 0 && isa < SC_ISA_N ? names[isa] : "?";
}

sc_qdot_fn sc_qdot_get_variant(int wtype, int isa, int vnni) {
    if (!sc_isa_available(isa) || (vnni && !sc_cpu_has_vnni())) return NULL;
    if (isa == SC_ISA_AVX2) return sc_qdot_avx2(wtype, vnni);
    if (isa == SC_ISA_AVX512) return sc_qdot_avx512(wtype, vnni);
    if (vnni) return NULL;
    switch (wtype) {
    case SC_GGML_F32: return dot_f32;
    case SC_GGML_F16: return dot_f16;
    case SC_GGML_BF16: return dot_bf16;
    case SC_GGML_Q8_0: return dot_q8_0;
    case SC_GGML_Q4_0: return dot_q4_0;
    case SC_GGML_Q4_1: return dot_q4_1;
    case SC_GGML_Q5_0: return dot_q5_0;
    case SC_GGML_Q5_1: return dot_q5_1;
    case SC_GGML_Q4_K: return dot_q4_k;
    case SC_GGML_Q5_K: return dot_q5_k;
    case SC_GGML_Q6_K: return dot_q6_k;
    default: return NULL;
    }
}

/* the VNNI variant wherever the CPU has VNNI and the type has one */
static int use_vnni(int wtype, int isa) { return sc_cpu_has_vnni() && sc_qdot_get_variant(wtype, isa, 1); }

sc_qdot_fn sc_qdot_get(int wtype, int isa) { return sc_qdot_get_variant(wtype, isa, use_vnni(wtype, isa)); }

sc_qdot_fn sc_qdot_best(int wtype) {
    for (int isa = SC_ISA_N - 1; isa >= 0; isa--) {
        sc_qdot_fn f = sc_qdot_get(wtype, isa);
        if (f) return f;
    }
    return NULL;
}

sc_qdot4_fn sc_qdot4_get_variant(int wtype, int isa, int vnni) {
    if (!sc_isa_available(isa) || (vnni && !sc_cpu_has_vnni())) return NULL;
    if (isa == SC_ISA_AVX2) return sc_qdot4_avx2(wtype, vnni);
    if (isa == SC_ISA_AVX512) return sc_qdot4_avx512(wtype, vnni);
    return NULL;
}

/* the variant sc_qdot_get(wtype, isa) takes */
sc_qdot4_fn sc_qdot4_get(int wtype, int isa) { return sc_qdot4_get_variant(wtype, isa, use_vnni(wtype, isa)); }

sc_qdot4_fn sc_qdot4_best(int wtype) {
    /* the isa sc_qdot_best takes its kernel from: never a 4-row kernel of
     * another isa than the single-row one (their bits would differ) */
    for (int isa = SC_ISA_N - 1; isa >= 0; isa--)
        if (sc_qdot_get(wtype, isa)) return sc_qdot4_get(wtype, isa);
    return NULL;
}

void sc_qtensor_dequant_rows(const sc_qtensor *w, int r0, int n_rows, float *out) {
    const uint8_t *src = w->data + (size_t)r0 * w->row_bytes;
    size_t n = (size_t)n_rows * w->cols;
    sc_dequant_fn f = sc_isa_available(SC_ISA_AVX2) ? sc_dequant_avx2(w->type) : NULL;
    if (f) f(src, out, n / (size_t)sc_ggml_block_size(w->type));
    else sc_dequant(w->type, src, out, n, NULL, NULL);
}

/* ---- bfloat16 tiles: plain C (the reference the AVX512_BF16 kernel is
 * tested against) ---- */

uint16_t sc_bf16_of(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7f800000u) == 0) return (uint16_t)(x >> 16 & 0x8000); /* zero, subnormal: signed zero */
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)(x >> 16 | 0x40); /* NaN stays NaN */
    return (uint16_t)((x + 0x7fffu + (x >> 16 & 1)) >> 16);
}

static float f32_of_bf16(uint16_t h) {
    uint32_t x = (uint32_t)h << 16;
    float f;
    memcpy(&f, &x, 4);
    return f;
}

void sc_bf16_round(const float *x, size_t n, uint16_t *out) {
    if (sc_cpu_has_bf16()) {
        sc_bf16_round_avx512(x, n, out);
        return;
    }
    for (size_t i = 0; i < n; i++) out[i] = sc_bf16_of(x[i]);
}

size_t sc_bf16_pack_bytes(int T, int IC) { return (size_t)((T + 15) / 16) * 16 * (size_t)IC * sizeof(uint16_t); }

void sc_bf16_pack(const float *x, int T, int IC, uint16_t *xp) {
    int P = IC / 2;
    size_t gsize = (size_t)P * 32; /* uint16 per group */
    if (T % 16) /* the last group's rows past T */
        memset(xp + (size_t)(T / 16) * gsize, 0, gsize * sizeof(uint16_t));
    for (int t = 0; t < T; t++) {
        uint16_t *o = xp + (size_t)(t / 16) * gsize + 2 * (t % 16), buf[64];
        for (int p0 = 0; p0 < P; p0 += 32) { /* 32 pairs at a time through buf */
            int n = P - p0 < 32 ? P - p0 : 32;
            sc_bf16_round(x + (size_t)t * IC + 2 * (size_t)p0, 2 * (size_t)n, buf);
            for (int p = 0; p < n; p++) memcpy(o + (size_t)(p0 + p) * 32, buf + 2 * p, 2 * sizeof(uint16_t));
        }
    }
}

static void bf16_tile_plain(const uint16_t *xp, int T, const uint16_t *wt, int R, int IC, float *out, size_t ldo) {
    int P = IC / 2;
    for (int t = 0; t < T; t++) {
        const uint16_t *xg = xp + (size_t)(t / 16) * P * 32 + 2 * (t % 16);
        for (int r = 0; r < R; r++) {
            const uint16_t *w = wt + (size_t)r * IC;
            float acc = 0;
            for (int p = 0; p < P; p++) {
                acc += f32_of_bf16(xg[32 * (size_t)p + 1]) * f32_of_bf16(w[2 * p + 1]);
                acc += f32_of_bf16(xg[32 * (size_t)p]) * f32_of_bf16(w[2 * p]);
            }
            out[(size_t)t * ldo + r] = acc;
        }
    }
}

sc_bf16_tile_fn sc_bf16_tile_get(int isa) {
    if (isa == SC_ISA_PLAIN) return bf16_tile_plain;
    if (isa == SC_ISA_AVX512 && sc_cpu_has_bf16()) return sc_bf16_tile_avx512();
    return NULL;
}

/* ---- 8-bit integer tiles: plain C (the reference the AVX512_VNNI kernel
 * is tested against) ---- */

int sc_i8_tile_supported(int wtype) {
    return wtype == SC_GGML_Q8_0 || wtype == SC_GGML_Q4_0 || wtype == SC_GGML_Q5_0;
}

/* the three arrays of a packed activation buffer, each 64-byte aligned */
static size_t i8_q_bytes(int G, int IC) { return ((size_t)G * 16 * IC + 63) & ~(size_t)63; }
static size_t i8_d_bytes(int G, int NB) { return ((size_t)G * NB * 16 * 4 + 63) & ~(size_t)63; }

size_t sc_i8_pack_bytes(int T, int IC) {
    int G = (T + 15) / 16, NB = IC / 32;
    return i8_q_bytes(G, IC) + 2 * i8_d_bytes(G, NB) + sc_qact_bytes(SC_GGML_Q8_0, IC) + 64;
}

void sc_i8_pack(const float *x, int T, int IC, void *buf, sc_i8_act *a) {
    int G = (T + 15) / 16, NB = IC / 32, P = IC / 4;
    uint8_t *base = buf;
    int8_t *q = (int8_t *)base;
    float *d = (float *)(base + i8_q_bytes(G, IC));
    int32_t *s = (int32_t *)(base + i8_q_bytes(G, IC) + i8_d_bytes(G, NB));
    uint8_t *row = base + i8_q_bytes(G, IC) + 2 * i8_d_bytes(G, NB); /* one quantised row */
    memset(base, 0, i8_q_bytes(G, IC) + 2 * i8_d_bytes(G, NB)); /* rows past T: zero */
    for (int t = 0; t < T; t++) {
        sc_qrow r;
        sc_qact_quantize(SC_GGML_Q8_0, x + (size_t)t * IC, IC, row, &r);
        int g = t / 16, l = t % 16;
        int8_t *qg = q + (size_t)g * P * 64 + 4 * l;
        for (int p = 0; p < P; p++) memcpy(qg + (size_t)p * 64, r.qs + 4 * (size_t)p, 4);
        for (int b = 0; b < NB; b++) {
            int sum = 0;
            for (int k = 0; k < 32; k++) sum += r.qs[32 * b + k];
            d[((size_t)g * NB + b) * 16 + l] = r.d[b];
            s[((size_t)g * NB + b) * 16 + l] = sum;
        }
    }
    *a = (sc_i8_act){.T = T, .IC = IC, .G = G, .NB = NB, .q = q, .d = d, .s = s};
}

/* the offset that makes a block value v of wtype an unsigned byte */
static int i8_offset(int wtype) { return wtype == SC_GGML_Q8_0 ? 128 : wtype == SC_GGML_Q4_0 ? 8 : 16; }

int sc_i8_unpack(const sc_qtensor *w, int r0, int R, uint8_t *u, float *d) {
    if (sc_isa_available(SC_ISA_AVX2)) return sc_i8_unpack_avx2(w, r0, R, u, d);
    int NB = w->cols / 32, off = i8_offset(w->type);
    for (int r = 0; r < R; r++) {
        const uint8_t *row = w->data + (size_t)(r0 + r) * w->row_bytes;
        for (int b = 0; b < NB; b++) {
            uint8_t *o = u + (size_t)r * w->cols + 32 * (size_t)b;
            if (w->type == SC_GGML_Q8_0) {
                const uint8_t *blk = row + (size_t)b * 34;
                d[(size_t)r * NB + b] = h16(blk);
                for (int k = 0; k < 32; k++) o[k] = (uint8_t)((int8_t)blk[2 + k] + off);
            } else if (w->type == SC_GGML_Q4_0) {
                const uint8_t *blk = row + (size_t)b * 18;
                d[(size_t)r * NB + b] = h16(blk);
                for (int k = 0; k < 16; k++) {
                    o[k] = blk[2 + k] & 15;
                    o[k + 16] = blk[2 + k] >> 4;
                }
            } else { /* Q5_0 */
                const uint8_t *blk = row + (size_t)b * 22;
                uint32_t qh;
                memcpy(&qh, blk + 2, 4);
                d[(size_t)r * NB + b] = h16(blk);
                for (int k = 0; k < 16; k++) {
                    o[k] = (uint8_t)((blk[6 + k] & 15) | ((qh >> k & 1) << 4));
                    o[k + 16] = (uint8_t)((blk[6 + k] >> 4) | ((qh >> (k + 16) & 1) << 4));
                }
            }
        }
    }
    return off;
}

static void i8_tile_plain(const sc_i8_act *a, const uint8_t *u, const float *d, int off, int R, float *out, size_t ldo) {
    int IC = a->IC, NB = a->NB, P = IC / 4;
    for (int t = 0; t < a->T; t++) {
        int g = t / 16, l = t % 16;
        const int8_t *qg = a->q + (size_t)g * P * 64 + 4 * l;
        const float *dx = a->d + (size_t)g * NB * 16 + l;
        const int32_t *sx = a->s + (size_t)g * NB * 16 + l;
        for (int r = 0; r < R; r++) {
            const uint8_t *ur = u + (size_t)r * IC;
            float acc = 0;
            for (int b = 0; b < NB; b++) {
                int32_t isum = -off * sx[16 * b];
                for (int p = 8 * b; p < 8 * b + 8; p++)
                    for (int i = 0; i < 4; i++) isum += (int32_t)ur[4 * p + i] * qg[(size_t)p * 64 + i];
                acc = fmaf((float)isum, d[(size_t)r * NB + b] * dx[16 * b], acc);
            }
            out[(size_t)t * ldo + r] = acc;
        }
    }
}

sc_i8_tile_fn sc_i8_tile_get(int isa) {
    if (isa == SC_ISA_PLAIN) return i8_tile_plain;
    if (isa == SC_ISA_AVX512 && sc_isa_available(SC_ISA_AVX512) && sc_cpu_has_vnni()) return sc_i8_tile_avx512_vnni();
    return NULL;
}

/* ---- the gated activation ---- */

void sc_glu(float *g, const float *u, size_t n, int gelu) {
    size_t i = sc_isa_available(SC_ISA_AVX2) ? sc_glu_avx2(g, u, n, gelu) : 0; /* all but a tail of < 8 */
    const float k2 = 2.0f * 0.79788456080286535588f; /* 2 sqrt(2/pi) */
    for (; i < n; i++) {
        float x = g[i], a = gelu ? k2 * x * (1.0f + 0.044715f * x * x) : x;
        g[i] = x / (1.0f + expf(-a)) * u[i];
    }
}

/* ---- matmul ---- */

enum { ROWS_T1 = 16, ROWS_INT = 16, ROWS_SGEMM = 64, TOK_INT = 64 };

/* Rows of a bfloat16 tile: a multiple of 6 (the AVX512_BF16 kernel's rows)
 * with R x IC x 2 bytes near 96 KiB, so the tile stays in L2 while the
 * packed activations stream past it; 12 .. 96. */
static int bf16_tile_rows(int IC) {
    int r = 98304 / (2 * IC) / 6 * 6;
    return r < 12 ? 12 : r > 96 ? 96 : r;
}

/* Rows of an 8-bit tile: a multiple of 3 (the VNNI kernel's rows) with
 * R x IC bytes near 64 KiB; 12 .. 96. */
static int i8_tile_rows(int IC) {
    int r = 65536 / IC / 3 * 3;
    return r < 12 ? 12 : r > 96 ? 96 : r;
}

/* the path a segment of T rows takes under mode (SC_QMM_INT, SC_QMM_SGEMM
 * or SC_QMM_INT_BF16 for a bfloat16 tile): AUTO, INT_SGEMM and INT_BF16
 * give one token the integer products and a batch float or bfloat16 tiles */
static int segment_mode(int mode, int T, int i8_ok) {
    if (mode == SC_QMM_AUTO) /* measured: docs/llm.md "Performance" */
        mode = sc_cpu_has_bf16() ? (sc_cpu_has_vnni() ? SC_QMM_INT_VNNI : SC_QMM_INT_BF16) : SC_QMM_INT_SGEMM;
    if (mode == SC_QMM_INT_VNNI && !i8_ok) /* a type without an integer tile */
        mode = sc_cpu_has_bf16() ? SC_QMM_INT_BF16 : SC_QMM_INT_SGEMM;
    if (mode == SC_QMM_INT_SGEMM) mode = T == 1 ? SC_QMM_INT : SC_QMM_SGEMM;
    if ((mode == SC_QMM_INT_BF16 || mode == SC_QMM_INT_VNNI) && T == 1) mode = SC_QMM_INT;
    return mode;
}

typedef struct mm_job {
    int n, IC, rows_per_task;
    float *const *outs;
    const sc_qtensor *const *ws;
    const float *x;        /* [T, IC] float input (F32 weights, sgemm) */
    const sc_qrow *act;    /* [n_int] quantised activations of the integer rows */
    const int *int_rows;   /* [n_int] their row numbers */
    int n_int;
    const int *seg;        /* segment s: rows seg[s] .. seg[s+1]-1 */
    const int *seg_mode;   /* SC_QMM_INT, SC_QMM_SGEMM, SC_QMM_INT_BF16 or SC_QMM_INT_VNNI per segment */
    int n_seg, any_sgemm, any_bf16, any_i8;
    const sc_i8_act *i8act; /* [n_seg] packed 8-bit activations of the INT_VNNI segments */
    sc_i8_tile_fn i8;
    const uint16_t *xp;    /* packed bfloat16 activations of the bf16 segments */
    const size_t *xp_off;  /* segment s's groups start at xp + xp_off[s] */
    sc_bf16_tile_fn bf16;
    int task0[9];          /* first task of weight k; task0[n] = total */
    sc_qdot_fn dot[8];
    sc_qdot4_fn dot4[8];   /* NULL: rows one by one */
    atomic_int failed;     /* scratch allocation failed in a task */
} mm_job;

static void mm_task(void *ctx, int task) {
    mm_job *j = ctx;
    int k = 0;
    while (task >= j->task0[k + 1]) k++;
    const sc_qtensor *w = j->ws[k];
    int OC = w->rows, r0 = (task - j->task0[k]) * j->rows_per_task;
    int r1 = r0 + j->rows_per_task < OC ? r0 + j->rows_per_task : OC, R = r1 - r0;
    float *out = j->outs[k];
    if (j->any_i8) { /* 8-bit integer segments: the tile unpacked once for all of them */
        uint8_t *u = sc_aligned_alloc((size_t)R * j->IC);
        float *d = sc_malloc((size_t)R * (j->IC / 32) * sizeof(float));
        if (!u || !d) {
            sc_free(u);
            sc_free(d);
            j->failed = 1;
            return;
        }
        int off = sc_i8_unpack(w, r0, R, u, d);
        for (int s = 0; s < j->n_seg; s++)
            if (j->seg_mode[s] == SC_QMM_INT_VNNI)
                j->i8(&j->i8act[s], u, d, off, R, out + (size_t)j->seg[s] * OC + r0, OC);
        sc_free(u);
        sc_free(d);
    }
    /* float and bfloat16 segments: the tile decoded once for all of them,
     * then one sgemm or tile kernel call per segment (the call it would get
     * alone: same bits) */
    float *tile = NULL; /* [R, IC] float; bf16 alone: one row at a time */
    uint16_t *tile16 = NULL;
    if (j->any_sgemm || j->any_bf16) {
        tile = sc_aligned_alloc((size_t)(j->any_sgemm ? R : 1) * j->IC * sizeof(float));
        tile16 = j->any_bf16 ? sc_aligned_alloc((size_t)R * j->IC * sizeof(uint16_t)) : NULL;
        if (!tile || (j->any_bf16 && !tile16)) {
            sc_free(tile);
            sc_free(tile16);
            j->failed = 1;
            return;
        }
        if (j->any_sgemm) sc_qtensor_dequant_rows(w, r0, R, tile);
        for (int r = 0; r < R && j->any_bf16; r++) {
            const float *row = tile + (size_t)r * j->IC;
            if (!j->any_sgemm) {
                sc_qtensor_dequant_rows(w, r0 + r, 1, tile);
                row = tile;
            }
            sc_bf16_round(row, (size_t)j->IC, tile16 + (size_t)r * j->IC);
        }
    }
    for (int s = 0; s < j->n_seg; s++) {
        int t0 = j->seg[s], t1 = j->seg[s + 1];
        if (j->seg_mode[s] == SC_QMM_SGEMM)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t1 - t0, R, j->IC, 1.0f, j->x + (size_t)t0 * j->IC, j->IC,
                        tile, j->IC, 0.0f, out + (size_t)t0 * OC + r0, OC);
        else if (j->seg_mode[s] == SC_QMM_INT_BF16)
            j->bf16(j->xp + j->xp_off[s], t1 - t0, tile16, R, j->IC, out + (size_t)t0 * OC + r0, OC);
    }
    /* the integer rows of all segments together (each row's products do not
     * depend on the others), in chunks so the chunk's activation rows stay
     * in L1/L2 while the tile's weight rows are reused from L1, 4 rows per
     * unpacked weight row where a 4-row kernel exists */
    sc_qdot_fn dot = j->dot[k];
    sc_qdot4_fn dot4 = j->dot4[k];
    for (int c0 = 0; c0 < j->n_int; c0 += TOK_INT) {
        int c1 = c0 + TOK_INT < j->n_int ? c0 + TOK_INT : j->n_int;
        for (int r = r0; r < r1; r++) {
            const uint8_t *wr = w->data + (size_t)r * w->row_bytes;
            int c = c0;
            for (float o4[4]; dot4 && c + 4 <= c1; c += 4) {
                dot4(wr, &j->act[c], j->IC, o4);
                for (int i = 0; i < 4; i++) out[(size_t)j->int_rows[c + i] * OC + r] = o4[i];
            }
            for (; c < c1; c++) out[(size_t)j->int_rows[c] * OC + r] = dot(wr, &j->act[c], j->IC);
        }
    }
    sc_free(tile);
    sc_free(tile16);
}

int sc_qmatmul(int n, float *const *outs, const sc_qtensor *const *ws, const float *x, int T, sc_pool *pool, int mode,
               sc_error *err) {
    int seg[2] = {0, T};
    return sc_qmatmul_seg(n, outs, ws, x, seg, 1, pool, mode, err);
}

int sc_qmatmul_seg(int n, float *const *outs, const sc_qtensor *const *ws, const float *x, const int *seg, int n_seg,
                   sc_pool *pool, int mode, sc_error *err) {
    if (n < 1 || n > 8) return sc_fail(err, SC_EINVAL, "sc_qmatmul: %d weights (1..8)", n);
    int IC = ws[0]->cols, atype = sc_qact_type(ws[0]->type), T = seg[n_seg];
    for (int k = 1; k < n; k++)
        if (ws[k]->cols != IC || sc_qact_type(ws[k]->type) != atype) {
            /* different shapes or activation types: one at a time */
            for (int i = 0; i < n; i++) {
                int rc = sc_qmatmul_seg(1, outs + i, ws + i, x, seg, n_seg, pool, mode, err);
                if (rc != SC_OK) return rc;
            }
            return SC_OK;
        }
    int *seg_mode = sc_malloc((size_t)n_seg * sizeof *seg_mode);
    if (!seg_mode) return sc_fail(err, SC_ENOMEM, "out of memory");
    mm_job j = {.n = n, .IC = IC, .outs = outs, .ws = ws, .x = x, .seg = seg, .seg_mode = seg_mode, .n_seg = n_seg};
    int any_int = 0, i8_ok = 1;
    for (int k = 0; k < n; k++) i8_ok &= sc_i8_tile_supported(ws[k]->type);
    size_t *xp_off = sc_malloc((size_t)n_seg * sizeof *xp_off), xp_bytes = 0, i8_bytes = 0;
    sc_i8_act *i8act = sc_calloc((size_t)n_seg, sizeof *i8act);
    if (!xp_off || !i8act) {
        sc_free(xp_off);
        sc_free(i8act);
        sc_free(seg_mode);
        return sc_fail(err, SC_ENOMEM, "out of memory");
    }
    for (int s = 0; s < n_seg; s++) {
        seg_mode[s] = segment_mode(mode, seg[s + 1] - seg[s], i8_ok);
        if (seg_mode[s] == SC_QMM_SGEMM) j.any_sgemm = 1;
        else if (seg_mode[s] == SC_QMM_INT_BF16) j.any_bf16 = 1;
        else if (seg_mode[s] == SC_QMM_INT_VNNI) j.any_i8 = 1;
        else any_int = 1;
        xp_off[s] = xp_bytes / sizeof(uint16_t);
        if (seg_mode[s] == SC_QMM_INT_BF16) xp_bytes += sc_bf16_pack_bytes(seg[s + 1] - seg[s], IC);
        if (seg_mode[s] == SC_QMM_INT_VNNI) i8_bytes += sc_i8_pack_bytes(seg[s + 1] - seg[s], IC);
    }
    uint16_t *xp = NULL;
    uint8_t *i8buf = NULL;
    if (j.any_i8) {
        if (!(i8buf = sc_aligned_alloc(i8_bytes))) {
            sc_free(xp_off);
            sc_free(i8act);
            sc_free(seg_mode);
            return sc_fail(err, SC_ENOMEM, "out of memory packing %d activation rows of %d", T, IC);
        }
        for (size_t s = 0, at = 0; s < (size_t)n_seg; s++)
            if (seg_mode[s] == SC_QMM_INT_VNNI) {
                sc_i8_pack(x + (size_t)seg[s] * IC, seg[s + 1] - seg[s], IC, i8buf + at, &i8act[s]);
                at += sc_i8_pack_bytes(seg[s + 1] - seg[s], IC);
            }
        j.i8act = i8act;
        j.i8 = sc_i8_tile_get(SC_ISA_AVX512);
        if (!j.i8) j.i8 = sc_i8_tile_get(SC_ISA_PLAIN);
    }
    if (j.any_bf16) {
        if (!(xp = sc_aligned_alloc(xp_bytes))) {
            sc_free(i8buf);
            sc_free(i8act);
            sc_free(xp_off);
            sc_free(seg_mode);
            return sc_fail(err, SC_ENOMEM, "out of memory packing %d activation rows of %d", T, IC);
        }
        for (int s = 0; s < n_seg; s++)
            if (seg_mode[s] == SC_QMM_INT_BF16) sc_bf16_pack(x + (size_t)seg[s] * IC, seg[s + 1] - seg[s], IC, xp + xp_off[s]);
        j.xp = xp;
        j.xp_off = xp_off;
        j.bf16 = sc_bf16_tile_get(SC_ISA_AVX512);
        if (!j.bf16) j.bf16 = sc_bf16_tile_get(SC_ISA_PLAIN);
    }
    j.rows_per_task = T == 1 ? ROWS_T1 : j.any_sgemm ? ROWS_SGEMM : j.any_bf16 ? bf16_tile_rows(IC)
                    : j.any_i8 ? i8_tile_rows(IC) : ROWS_INT;
    j.task0[0] = 0;
    for (int k = 0; k < n; k++) {
        j.task0[k + 1] = j.task0[k] + (ws[k]->rows + j.rows_per_task - 1) / j.rows_per_task;
        j.dot[k] = sc_qdot_best(ws[k]->type);
        j.dot4[k] = sc_qdot4_best(ws[k]->type);
    }
    uint8_t *buf = NULL;
    sc_qrow *act = NULL;
    int *int_rows = NULL;
    if (any_int) {
        size_t rb = (sc_qact_bytes(atype, IC) + 63) & ~(size_t)63;
        act = sc_malloc((size_t)T * sizeof *act);
        int_rows = sc_malloc((size_t)T * sizeof *int_rows);
        buf = rb ? sc_aligned_alloc((size_t)T * rb) : NULL;
        if (!act || !int_rows || (rb && !buf)) {
            sc_free(act);
            sc_free(int_rows);
            sc_free(buf);
            sc_free(seg_mode);
            sc_free(xp);
            sc_free(xp_off);
            sc_free(i8buf);
            sc_free(i8act);
            return sc_fail(err, SC_ENOMEM, "out of memory quantising %d activation rows of %d", T, IC);
        }
        for (int s = 0; s < n_seg; s++)
            if (seg_mode[s] == SC_QMM_INT)
                for (int t = seg[s]; t < seg[s + 1]; t++) {
                    sc_qact_quantize(atype, x + (size_t)t * IC, IC, buf + (size_t)j.n_int * rb, &act[j.n_int]);
                    int_rows[j.n_int++] = t;
                }
        j.act = act;
        j.int_rows = int_rows;
    }
    sc_pool_run(pool, j.task0[n], mm_task, &j);
    sc_free(act);
    sc_free(int_rows);
    sc_free(buf);
    sc_free(seg_mode);
    sc_free(xp);
    sc_free(xp_off);
    sc_free(i8buf);
    sc_free(i8act);
    if (j.failed) return sc_fail(err, SC_ENOMEM, "out of memory for a weight tile of %d x %d", j.rows_per_task, IC);
    return SC_OK;
}
