/* Dequantisation of ggml tensor types to float, block layouts exactly as
 * ggml (ggml-common.h / ggml-quants.c): F32, F16, BF16, Q8_0, Q4_0, Q4_1,
 * Q4_K, Q5_K, Q6_K. */
#ifndef SC_LM_QUANT_H
#define SC_LM_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

/* 1 when sc_dequant handles type (an SC_GGML_* value). */
int sc_dequant_supported(int type);

/* Decode n elements of type from src (n / block_size blocks, laid out
 * contiguously) into dst. SC_EINVAL when n is not a multiple of the block
 * size or the type is unsupported; the message names `what` (a tensor). */
int sc_dequant(int type, const void *src, float *dst, size_t n, const char *what, sc_error *err);

/* 6-bit scale *d and min *m of sub-block j (0..7) of the 12-byte scale
 * array of a Q4_K / Q5_K block (ggml's get_scale_min_k4). */
void sc_q_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m);

#endif
