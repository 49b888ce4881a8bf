/* Dequantisation: one function per ggml block type, following the
 * reference dequantize_row_* of ggml-quants.c so results agree bit for bit
 * up to float rounding order. */
#include "lm/quant.h"

#include <math.h>
#include <string.h>

#include "lm/gguf.h"
#include "lm/safetensors.h" /* sc_f16_to_f32, sc_bf16_to_f32 */

static float h16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return sc_f16_to_f32(h);
}

int sc_dequant_supported(int type) {
    switch (type) {
    case SC_GGML_F32: case SC_GGML_F16: case SC_GGML_BF16: case SC_GGML_Q8_0: case SC_GGML_Q4_0:
    case SC_GGML_Q4_1: case SC_GGML_Q5_0: case SC_GGML_Q5_1: case SC_GGML_Q4_K: case SC_GGML_Q5_K: case SC_GGML_Q6_K:
        return 1;
    default:
        return 0;
    }
}

/* Q8_0: {f16 d; int8 qs[32]} */
static void dq_q8_0(const uint8_t *b, float *y) {
    float d = h16(b);
    const int8_t *q = (const int8_t *)(b + 2);
    for (int j = 0; j < 32; j++) y[j] = q[j] * d;
}

/* Q4_0: {f16 d; uint8 qs[16]}; low nibbles are elements 0..15, high 16..31 */
static void dq_q4_0(const uint8_t *b, float *y) {
    float d = h16(b);
    const uint8_t *q = b + 2;
    for (int j = 0; j < 16; j++) {
        y[j] = ((q[j] & 0x0f) - 8) * d;
        y[j + 16] = ((q[j] >> 4) - 8) * d;
    }
}

/* Q4_1: {f16 d; f16 m; uint8 qs[16]} */
static void dq_q4_1(const uint8_t *b, float *y) {
    float d = h16(b), m = h16(b + 2);
    const uint8_t *q = b + 4;
    for (int j = 0; j < 16; j++) {
        y[j] = (q[j] & 0x0f) * d + m;
        y[j + 16] = (q[j] >> 4) * d + m;
    }
}

/* Q5_0: {f16 d; uint8 qh[4]; uint8 qs[16]}; bit j of qh is the fifth bit of
 * element j (low nibbles 0..15, high nibbles 16..31), values offset by 16.
 * Q5_1: {f16 d; f16 m; qh; qs}, unsigned, plus m. Gemma 3 files use Q5_0. */
static void dq_q5(const uint8_t *b, float *y, int with_min) {
    float d = h16(b), m = with_min ? h16(b + 2) : 0.0f;
    const uint8_t *p = b + (with_min ? 4 : 2);
    uint32_t qh;
    memcpy(&qh, p, 4);
    const uint8_t *q = p + 4;
    int off = with_min ? 0 : 16;
    for (int j = 0; j < 16; j++) {
        int x0 = (int)((q[j] & 0x0f) | (((qh >> j) << 4) & 0x10)) - off;
        int x1 = (int)((q[j] >> 4) | ((qh >> (j + 12)) & 0x10)) - off;
        /* no "+ 0" for Q5_0: it would turn ggml's -0.0 (0 * negative d) into +0.0 */
        y[j] = with_min ? x0 * d + m : x0 * d;
        y[j + 16] = with_min ? x1 * d + m : x1 * d;
    }
}

/* 6-bit scale and min j of the 12-byte K-quant scale array */
void sc_q_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
    }
}

/* Q4_K: {f16 d; f16 dmin; uint8 scales[12]; uint8 qs[128]}, 256 elements */
static void dq_q4_k(const uint8_t *b, float *y) {
    float d = h16(b), min = h16(b + 2);
    const uint8_t *sc = b + 4, *q = b + 16;
    int is = 0;
    for (int j = 0; j < 256; j += 64) {
        uint8_t s, m;
        sc_q_scale_min_k4(is + 0, sc, &s, &m);
        float d1 = d * s, m1 = min * m;
        sc_q_scale_min_k4(is + 1, sc, &s, &m);
        float d2 = d * s, m2 = min * m;
        for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0xF) - m1;
        for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
        q += 32;
        is += 2;
    }
}

/* Q5_K: {f16 d; f16 dmin; uint8 scales[12]; uint8 qh[32]; uint8 qs[128]} */
static void dq_q5_k(const uint8_t *b, float *y) {
    float d = h16(b), min = h16(b + 2);
    const uint8_t *sc = b + 4, *qh = b + 16, *ql = b + 48;
    int is = 0;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0; j < 256; j += 64) {
        uint8_t s, m;
        sc_q_scale_min_k4(is + 0, sc, &s, &m);
        float d1 = d * s, m1 = min * m;
        sc_q_scale_min_k4(is + 1, sc, &s, &m);
        float d2 = d * s, m2 = min * m;
        for (int l = 0; l < 32; l++) *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
        for (int l = 0; l < 32; l++) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
        ql += 32;
        is += 2;
        u1 <<= 2;
        u2 <<= 2;
    }
}

/* Q6_K: {uint8 ql[128]; uint8 qh[64]; int8 scales[16]; f16 d} */
static void dq_q6_k(const uint8_t *b, float *y) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = h16(b + 208);
    for (int n = 0; n < 256; n += 128) {
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            int q1 = (int8_t)((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            int q2 = (int8_t)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            int q3 = (int8_t)((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            int q4 = (int8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l + 0] = d * sc[is + 0] * q1;
            y[l + 32] = d * sc[is + 2] * q2;
            y[l + 64] = d * sc[is + 4] * q3;
            y[l + 96] = d * sc[is + 6] * q4;
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
    }
}

int sc_dequant(int type, const void *src, float *dst, size_t n, const char *what, sc_error *err) {
    const uint8_t *s = src;
    if (!sc_dequant_supported(type))
        return sc_fail(err, SC_EINVAL, "%s: tensor type %s (%d) cannot be dequantised", what ? what : "tensor",
                       sc_ggml_type_name(type), type);
    size_t bs = (size_t)sc_ggml_block_size(type), ts = (size_t)sc_ggml_type_size(type);
    if (n % bs)
        return sc_fail(err, SC_EINVAL, "%s: %zu elements is not a multiple of the %s block size %zu",
                       what ? what : "tensor", n, sc_ggml_type_name(type), bs);
    size_t nb = n / bs;
    switch (type) {
    case SC_GGML_F32: memcpy(dst, s, n * 4); break;
    case SC_GGML_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            dst[i] = sc_f16_to_f32(h);
        }
        break;
    case SC_GGML_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            dst[i] = sc_bf16_to_f32(h);
        }
        break;
    case SC_GGML_Q8_0: for (size_t i = 0; i < nb; i++) dq_q8_0(s + i * ts, dst + i * bs); break;
    case SC_GGML_Q4_0: for (size_t i = 0; i < nb; i++) dq_q4_0(s + i * ts, dst + i * bs); break;
    case SC_GGML_Q4_1: for (size_t i = 0; i < nb; i++) dq_q4_1(s + i * ts, dst + i * bs); break;
    case SC_GGML_Q5_0: for (size_t i = 0; i < nb; i++) dq_q5(s + i * ts, dst + i * bs, 0); break;
    case SC_GGML_Q5_1: for (size_t i = 0; i < nb; i++) dq_q5(s + i * ts, dst + i * bs, 1); break;
    case SC_GGML_Q4_K: for (size_t i = 0; i < nb; i++) dq_q4_k(s + i * ts, dst + i * bs); break;
    case SC_GGML_Q5_K: for (size_t i = 0; i < nb; i++) dq_q5_k(s + i * ts, dst + i * bs); break;
    case SC_GGML_Q6_K: for (size_t i = 0; i < nb; i++) dq_q6_k(s + i * ts, dst + i * bs); break;
    default: break;
    }
    return SC_OK;
}
