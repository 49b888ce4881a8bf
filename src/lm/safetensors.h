/* safetensors reader: header validation as in the format's reference
 * implementation (huggingface/safetensors), mmap'ed tensor data, and
 * conversion of F32 / F16 / BF16 tensors to float.
 *
 * Layout: u64 little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *  "__metadata__": {...}}, then the data buffer. Checks: N bounded and inside
 * the file, the header is a JSON object, every dtype known, shape entries
 * non-negative, byte sizes computed without overflow and equal to
 * end - begin, no duplicate names, and the tensors' byte ranges tile the data
 * buffer exactly (no gaps, no overlap, nothing after the last). */
#ifndef SC_LM_SAFETENSORS_H
#define SC_LM_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "base/file.h"

enum { SC_ST_MAX_DIMS = 8 };
#define SC_ST_MAX_HEADER ((uint64_t)100000000) /* the reference's bound */

typedef enum sc_dtype {
    SC_DT_BOOL, SC_DT_U8, SC_DT_I8, SC_DT_I16, SC_DT_U16, SC_DT_F16, SC_DT_BF16,
    SC_DT_I32, SC_DT_U32, SC_DT_F32, SC_DT_F64, SC_DT_I64, SC_DT_U64,
    SC_DT_F8_E4M3, SC_DT_F8_E5M2, SC_DT_COUNT
} sc_dtype;

typedef struct sc_st_tensor {
    char *name;
    sc_dtype dtype;
    int ndim;
    int64_t shape[SC_ST_MAX_DIMS];
    int64_t numel;
    size_t begin, end;     /* byte range inside the data buffer */
    const uint8_t *data;   /* = data buffer + begin */
} sc_st_tensor;

typedef struct sc_safetensors {
    char path[4096];       /* for error messages */
    sc_mmap map;           /* set by sc_st_open; empty for sc_st_parse */
    int n;
    sc_st_tensor *tensors; /* sorted by byte offset */
} sc_safetensors;

/* Name of a dtype ("F32") and its size in bytes. */
const char *sc_dtype_name(sc_dtype dt);
size_t sc_dtype_size(sc_dtype dt);

/* Parse and validate a safetensors image held in buf (size bytes); `name`
 * labels errors. Tensor data pointers point into buf, which must outlive st.
 * On failure st holds nothing to free. */
int sc_st_parse(sc_safetensors *st, const uint8_t *buf, size_t size, const char *name, sc_error *err);

/* mmap and validate the file at path. Close with sc_st_close. */
int sc_st_open(sc_safetensors *st, const char *path, sc_error *err);
void sc_st_close(sc_safetensors *st);

/* The tensor called name, or NULL. */
const sc_st_tensor *sc_st_find(const sc_safetensors *st, const char *name);

/* Load tensor `name` as float with the expected shape (ndim dims). F32 data
 * that is 4-byte aligned is returned in place (*owned = 0, points into the
 * mapping); F16, BF16 and unaligned F32 are converted into a new buffer
 * (*owned = 1, free with sc_free). Errors name the file and the tensor: a
 * missing tensor, another shape, an unsupported dtype. */
int sc_st_get_f32(const sc_safetensors *st, const char *name, int ndim, const int64_t *shape,
                  float **out, int *owned, sc_error *err);

/* IEEE half and bfloat16 to float. */
float sc_f16_to_f32(uint16_t h);
float sc_bf16_to_f32(uint16_t h);

#endif
