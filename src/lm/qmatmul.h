/* Matrix products with weights kept in their GGUF block type (no float copy):
 * the weight rows point into the mmapped file, activations are quantised per
 * row to 8 bits the way llama.cpp does it (Q8_0 for Q4_0/Q8_0 weights, Q8_1
 * for Q4_1, Q8_K for the K-quants; float for F32/F16/BF16 weights), and the
 * dot products run on the integer blocks: plain C everywhere, AVX2 and
 * AVX-512 kernels (qdot_x86.c) chosen at run time by cpuid, so one binary
 * runs on any x86-64 and uses what the CPU has.
 *
 * Dimension letters: T tokens (rows of x), IC input width (weight columns),
 * OC output width (weight rows), NB blocks per row. */
#ifndef SC_LM_QMATMUL_H
#define SC_LM_QMATMUL_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "base/util.h"
#include "lm/gguf.h"

/* A weight matrix [rows, cols] in a ggml type, row-major, one row per
 * output (ggml's ne[1] rows of ne[0] columns). data is not owned. */
typedef struct sc_qtensor {
    int type;            /* SC_GGML_* */
    int rows, cols;      /* OC, IC */
    size_t row_bytes;    /* cols / block size * bytes per block */
    const uint8_t *data; /* rows * row_bytes bytes */
} sc_qtensor;

/* Instruction sets with their own kernels. */
enum { SC_ISA_PLAIN = 0, SC_ISA_AVX2 = 1, SC_ISA_AVX512 = 2, SC_ISA_N = 3 };

/* 1 when the running CPU (and the compiler) supports isa. */
int sc_isa_available(int isa);
const char *sc_isa_name(int isa);
/* 1 when the CPU has AVX512_VNNI and AVX512VL besides SC_ISA_AVX512: the
 * Q8_0, Q4_0, Q4_1 and Q5_0 kernels of SC_ISA_AVX2 and SC_ISA_AVX512 then
 * come in their VNNI variant (vpdpbusd for maddubs + madd), same bits. */
int sc_cpu_has_vnni(void);
/* 1 when the CPU has AVX512_BF16 (and AVX512VL) besides SC_ISA_AVX512:
 * the bfloat16 tile kernel (sc_bf16_tile_get) runs, and SC_QMM_AUTO takes
 * it for prompts. */
int sc_cpu_has_bf16(void);

/* 1 when weights of type can be multiplied (F32 F16 BF16 Q8_0 Q4_0 Q4_1
 * Q4_K Q5_K Q6_K). */
int sc_qmatmul_supported(int type);

/* Wrap GGUF tensor t, which must be 2-D [cols, rows] (ne[0] = cols) of a
 * supported type; `file` names the file in messages. */
int sc_qtensor_from_gguf(sc_qtensor *w, const sc_gguf_tensor *t, const char *file, sc_error *err);

/* Dequantise row r (0 <= r < rows) into out[cols]. */
void sc_qtensor_row(const sc_qtensor *w, int r, float *out);

/* One activation row as the dot products read it. For Q8_0/Q8_1: d[NB]
 * scales (fp16-rounded, as ggml stores them), s[NB] = d * sum(qs of the
 * block) (Q8_1 only), qs[IC]. For Q8_K (256-blocks): d[NB], bsums[NB*16]
 * (sums of 16 consecutive qs), qs[IC]. For F32: f[IC]. */
typedef struct sc_qrow {
    const int8_t *qs;
    const float *d, *s;
    const int16_t *bsums;
    const float *f;
} sc_qrow;

/* The activation type weights of type wtype multiply with
 * (SC_GGML_Q8_0, SC_GGML_Q8_1, SC_GGML_Q8_K or SC_GGML_F32). */
int sc_qact_type(int wtype);
/* Bytes one activation row of n elements takes (0 for F32: x is used as is). */
size_t sc_qact_bytes(int atype, int n);
/* Quantise x[n] into buf (sc_qact_bytes long, 4-byte aligned) and point row
 * at it. n must be a multiple of the block size (32, or 256 for Q8_K). */
void sc_qact_quantize(int atype, const float *x, int n, void *buf, sc_qrow *row);

/* sum_i w[i] * a[i] over one weight row w (n = cols elements) and one
 * activation row of the matching type. */
typedef float (*sc_qdot_fn)(const uint8_t *w, const sc_qrow *a, int n);

/* The same for one weight row and 4 activation rows a[0..3] (out[4]), each
 * result the same bits as the single-row kernel sc_qdot_best gives: the
 * weight blocks are unpacked once for the 4. */
typedef void (*sc_qdot4_fn)(const uint8_t *w, const sc_qrow *a, int n, float *out);

/* The kernel for weight type wtype on isa; NULL when the CPU lacks isa or
 * that isa has no kernel of its own for the type. The VNNI variant where
 * sc_cpu_has_vnni() and the type has one. */
sc_qdot_fn sc_qdot_get(int wtype, int isa);
/* The same with the variant chosen: vnni 0, the maddubs kernel; 1, the VNNI
 * one (NULL where the CPU lacks VNNI or wtype has no VNNI kernel on isa). */
sc_qdot_fn sc_qdot_get_variant(int wtype, int isa, int vnni);
/* The fastest kernel the CPU runs for wtype (never NULL for a supported type). */
sc_qdot_fn sc_qdot_best(int wtype);

/* The 4-row kernel of isa whose rows equal sc_qdot_get(wtype, isa)'s, or
 * NULL (the CPU lacks isa, or isa has no 4-row kernel for the type). */
sc_qdot4_fn sc_qdot4_get(int wtype, int isa);
/* The 4-row kernel of sc_qdot_get_variant(wtype, isa, vnni), or NULL. */
sc_qdot4_fn sc_qdot4_get_variant(int wtype, int isa, int vnni);
/* The 4-row kernel matching sc_qdot_best(wtype), or NULL where there is none
 * (then rows go one by one). */
sc_qdot4_fn sc_qdot4_best(int wtype);

/* Dequantise nb blocks of a type from src into dst (the fastest kernel the
 * CPU has; bit-equal to sc_dequant). */
typedef void (*sc_dequant_fn)(const uint8_t *src, float *dst, size_t nb);
void sc_qtensor_dequant_rows(const sc_qtensor *w, int r0, int n_rows, float *out);

/* ---- bfloat16 tiles (SC_QMM_INT_BF16) ----
 * A value is rounded to bfloat16 (the top 16 bits of the float) to nearest
 * even, float subnormals to signed zero (as vcvtne2ps2bf16 does). A weight
 * tile is R rows rounded to bfloat16, row-major wt[R][IC]. Activations
 * x[T][IC] are packed in groups of 16 rows: xp[g][p][l][h] =
 * bf16(x[16g + l][2p + h]), rows past T zero. IC is even. */

/* bytes sc_bf16_pack writes for T rows of IC */
size_t sc_bf16_pack_bytes(int T, int IC);
void sc_bf16_pack(const float *x, int T, int IC, uint16_t *xp);
/* bf16(f) in plain C */
uint16_t sc_bf16_of(float f);
/* out[i] = bf16(x[i]) for i < n: AVX512_BF16 where the CPU has it (the
 * same bits as sc_bf16_of, tested), else sc_bf16_of */
void sc_bf16_round(const float *x, size_t n, uint16_t *out);

/* out[t * ldo + r] = x[t] . w[r] for t < T, r < R over packed xp and tile
 * wt: per (t, r) one float sum, over p in order, of x[2p+1] w[2p+1] and then
 * x[2p] w[2p] (products of bfloat16 values are exact in float): the order
 * vdpbf16ps adds in, so the plain C and AVX512_BF16 kernels give the same
 * bits (tested). */
typedef void (*sc_bf16_tile_fn)(const uint16_t *xp, int T, const uint16_t *wt, int R, int IC, float *out, size_t ldo);
/* SC_ISA_PLAIN: the plain C kernel; SC_ISA_AVX512: the AVX512_BF16 one,
 * NULL when the CPU lacks it; other isas: NULL */
sc_bf16_tile_fn sc_bf16_tile_get(int isa);

/* ---- 8-bit integer tiles (SC_QMM_INT_VNNI) ----
 * For the 32-block types whose activations are Q8_0 (Q8_0, Q4_0, Q5_0):
 * a prompt's activations are quantised per row to Q8_0 (sc_qact_quantize:
 * llama.cpp's 8-bit activations) and packed in groups of 16 rows; a tile
 * of R weight rows is unpacked once to unsigned bytes u = v + off (v the
 * signed block value: Q5_0 off 16, Q4_0 8, Q8_0 128) and float scales. A
 * (token, row) product is then, per 32-block b, the exact integer
 * sum_k u_k q_k - off * sum_k q_k (vpdpbusd: 64 byte products per
 * instruction, twice vdpbf16ps's 32) times d_w[b] * d_x[b], summed in
 * float with one fma per block, in block order. */

/* Packed activations of T rows of IC (IC a multiple of 32, NB = IC / 32,
 * G = (T + 15) / 16 groups; rows past T are zero):
 * q[g][p][l][i] = qs of row 16g + l, element 4p + i (p < IC / 4);
 * d[g][b][l] = its block scale (fp16-rounded, as sc_qact_quantize);
 * s[g][b][l] = sum of its block's 32 qs. */
typedef struct sc_i8_act {
    int T, IC, G, NB;
    const int8_t *q;
    const float *d;
    const int32_t *s;
} sc_i8_act;

/* 1 when weights of wtype have an integer tile (Q8_0, Q4_0, Q5_0) */
int sc_i8_tile_supported(int wtype);
/* bytes sc_i8_pack needs for T rows of IC */
size_t sc_i8_pack_bytes(int T, int IC);
/* quantise x[T][IC] to Q8_0 and pack into buf (sc_i8_pack_bytes, 64-byte
 * aligned); a points into buf */
void sc_i8_pack(const float *x, int T, int IC, void *buf, sc_i8_act *a);
/* rows r0 .. r0+R-1 of w (sc_i8_tile_supported) -> u[R][IC] = v + off,
 * d[R][NB] float scales; returns off. AVX2 where the CPU has it, else
 * plain C (the same bytes). */
int sc_i8_unpack(const sc_qtensor *w, int r0, int R, uint8_t *u, float *d);

/* out[t * ldo + r] = product of activation row t (t < a->T) and tile row r
 * (r < R): acc = 0; per block b in order, acc = fmaf((float)isum_b,
 * d[r][b] * a->d[t][b], acc), isum_b exact. The plain C and AVX512_VNNI
 * kernels give the same bits (tested). */
typedef void (*sc_i8_tile_fn)(const sc_i8_act *a, const uint8_t *u, const float *d, int off, int R, float *out,
                              size_t ldo);
/* SC_ISA_PLAIN: plain C; SC_ISA_AVX512: the AVX512_VNNI kernel, NULL where
 * the CPU lacks VNNI; other isas: NULL */
sc_i8_tile_fn sc_i8_tile_get(int isa);

/* ---- half precision (the F16 KV cache) ----
 * fp16 bits of f, rounded to nearest even, subnormals kept, overflow to
 * infinity (F16C's vcvtps2ph; NaN becomes the quiet NaN 0x7e00 with the
 * sign) */
uint16_t sc_f16_of(float f);
/* out[i] = sc_f16_of(x[i]) (F16C where the CPU has it: the same bits for
 * every non-NaN value) */
void sc_f16_round(const float *x, size_t n, uint16_t *out);
/* out[i] = the float value of h[i] (exact) */
void sc_f16_widen(const uint16_t *h, size_t n, float *out);

/* ---- the gated activation of the feed-forward ----
 * g[i] = g[i] sigmoid(a) u[i] for i < n, in place: a = g[i] (SwiGLU:
 * silu(g) u) or, with gelu, a = 2 sqrt(2/pi) g (1 + 0.044715 g^2) (GeGLU
 * with GELU's tanh approximation as ggml_gelu: 0.5 (1 + tanh(v)) =
 * sigmoid(2v), one exp instead of tanh). AVX2, 8 at a time with a
 * polynomial exp (within 4 ulp of the plain C results, tested), where the
 * CPU has it; else plain C with expf. */
void sc_glu(float *g, const float *u, size_t n, int gelu);

/* How products are computed. SC_QMM_INT: integer dot products on 8-bit
 * quantised activations over tiles of weight rows x all T activation rows
 * (each weight tile stays in L1 while the tokens stream past).
 * SC_QMM_SGEMM: a tile of weight rows dequantised to float and multiplied
 * by OpenBLAS sgemm with float activations, for every T: exactly
 * "dequantise, then float GEMM" (the reference the tests compare against).
 * SC_QMM_INT_SGEMM: integer for T = 1, sgemm for T > 1. SC_QMM_INT_BF16:
 * integer for T = 1; for T > 1 the tile dequantised and rounded to
 * bfloat16, activations rounded to bfloat16, products summed in float
 * (sc_bf16_tile_get; the AVX512_BF16 kernel where the CPU has it, else plain
 * C). SC_QMM_INT_VNNI: as SC_QMM_INT_BF16, except that for T > 1 weights
 * with an 8-bit integer tile (Q8_0, Q4_0, Q5_0: sc_i8_tile_supported) run
 * through it (sc_i8_tile_get; AVX512_VNNI where the CPU has it, else plain
 * C). SC_QMM_AUTO: the combination measured fastest (docs/llm.md,
 * "Performance"): INT_VNNI where the CPU has AVX512_VNNI and AVX512_BF16,
 * INT_BF16 where it has AVX512_BF16 only, else INT_SGEMM. */
enum { SC_QMM_AUTO = 0, SC_QMM_INT = 1, SC_QMM_SGEMM = 2, SC_QMM_INT_SGEMM = 3, SC_QMM_INT_BF16 = 4, SC_QMM_INT_VNNI = 5 };

/* outs[k][T, ws[k]->rows] = x[T, IC] ws[k]^T for k < n: several weights that
 * read the same input (Q/K/V, gate/up) in one parallel section. Every ws[k]
 * has cols == IC. pool (may be NULL: one thread) runs the row tiles; mode is
 * an SC_QMM_* value. SC_ENOMEM when scratch cannot be allocated. */
int sc_qmatmul(int n, float *const *outs, const sc_qtensor *const *ws, const float *x, int T, sc_pool *pool,
               int mode, sc_error *err);

/* The same over rows cut into segments (segment s: rows seg[s] ..
 * seg[s+1]-1, seg[0] = 0, T = seg[n_seg]), each computed exactly as
 * sc_qmatmul of its rows alone computes them (the path chosen by mode and
 * the segment's length, the same sgemm call), while each weight tile is read
 * and decoded once for all segments: several sequences' tokens in one pass. */
int sc_qmatmul_seg(int n, float *const *outs, const sc_qtensor *const *ws, const float *x, const int *seg, int n_seg,
                   sc_pool *pool, int mode, sc_error *err);

#endif
