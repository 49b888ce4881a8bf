/* GGUF reader (versions 2 and 3): header, metadata key/values of every type,
 * tensor infos, alignment. The file is mmap'ed; strings and tensor data point
 * into the mapping. Every count, size and offset is checked against the file
 * before use, so a malformed or hostile file yields SC_EFORMAT with a message
 * naming the file and the key or tensor at fault, never a crash.
 * Layout reference: ggml/docs/gguf.md (little-endian only). */
#ifndef SC_LM_GGUF_H
#define SC_LM_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "base/file.h"

enum { /* metadata value types (gguf_type) */
    SC_GGUF_U8 = 0, SC_GGUF_I8 = 1, SC_GGUF_U16 = 2, SC_GGUF_I16 = 3,
    SC_GGUF_U32 = 4, SC_GGUF_I32 = 5, SC_GGUF_F32 = 6, SC_GGUF_BOOL = 7,
    SC_GGUF_STRING = 8, SC_GGUF_ARRAY = 9, SC_GGUF_U64 = 10, SC_GGUF_I64 = 11,
    SC_GGUF_F64 = 12, SC_GGUF_NTYPES = 13
};

enum { /* tensor types (ggml_type), the ones with a known block layout */
    SC_GGML_F32 = 0, SC_GGML_F16 = 1, SC_GGML_Q4_0 = 2, SC_GGML_Q4_1 = 3,
    SC_GGML_Q5_0 = 6, SC_GGML_Q5_1 = 7, SC_GGML_Q8_0 = 8, SC_GGML_Q8_1 = 9,
    SC_GGML_Q2_K = 10, SC_GGML_Q3_K = 11, SC_GGML_Q4_K = 12, SC_GGML_Q5_K = 13,
    SC_GGML_Q6_K = 14, SC_GGML_Q8_K = 15, SC_GGML_I8 = 24, SC_GGML_I16 = 25,
    SC_GGML_I32 = 26, SC_GGML_I64 = 27, SC_GGML_F64 = 28, SC_GGML_BF16 = 30,
    SC_GGML_NTYPES = 31
};

#define SC_GGUF_MAX_DIMS 4

typedef struct sc_gguf_kv {
    char *key;        /* NUL-terminated copy */
    int type;         /* SC_GGUF_* */
    /* scalars: the value widened; strings: s/slen (not NUL-terminated, in the map) */
    uint64_t u;
    int64_t i;
    double f;
    const char *s;
    uint64_t slen;
    /* arrays: element type, count, raw little-endian elements in the map;
     * for string arrays, stroff[k] is the offset of element k's length prefix */
    int arr_type;
    uint64_t arr_n;
    const uint8_t *arr;
    uint64_t *stroff;
} sc_gguf_kv;

typedef struct sc_gguf_tensor {
    char *name;
    int ndim;
    uint64_t ne[SC_GGUF_MAX_DIMS]; /* ne[0] is the fastest-varying dimension */
    uint64_t nelem;
    int type;                      /* SC_GGML_* */
    uint64_t offset;               /* relative to the data section */
    uint64_t nbytes;
    const uint8_t *data;           /* into the map, aligned */
} sc_gguf_tensor;

typedef struct sc_gguf {
    char name[512];   /* file name for messages */
    sc_mmap map;
    int mapped;
    uint32_t version;
    uint64_t alignment;
    int64_t n_kv, n_tensors;
    sc_gguf_kv *kv;
    sc_gguf_tensor *tensors;
    const uint8_t *data; /* start of tensor data section */
} sc_gguf;

/* Block size (elements) and bytes per block of a ggml type; 0 when unknown. */
int sc_ggml_block_size(int type);
int sc_ggml_type_size(int type);
const char *sc_ggml_type_name(int type);

/* Parse a GGUF image held in memory (not copied: buf must outlive g).
 * name is used in error messages. Release with sc_gguf_close. */
int sc_gguf_parse(sc_gguf *g, const uint8_t *buf, size_t size, const char *name, sc_error *err);
/* mmap path and parse it. */
int sc_gguf_open(sc_gguf *g, const char *path, sc_error *err);
void sc_gguf_close(sc_gguf *g);

/* Lookups: NULL when absent. */
const sc_gguf_kv *sc_gguf_find(const sc_gguf *g, const char *key);
const sc_gguf_tensor *sc_gguf_tensor_find(const sc_gguf *g, const char *name);

/* Typed getters: SC_ENOTFOUND if absent, SC_EFORMAT if the type does not fit. */
int sc_gguf_get_u64(const sc_gguf *g, const char *key, uint64_t *out, sc_error *err);
int sc_gguf_get_f32(const sc_gguf *g, const char *key, float *out, sc_error *err);
/* String value as a fresh NUL-terminated copy (sc_free). */
int sc_gguf_get_str(const sc_gguf *g, const char *key, char **out, sc_error *err);
/* Element k of a string array (pointer into the map, not NUL-terminated). */
int sc_gguf_arr_str(const sc_gguf_kv *kv, uint64_t k, const char **s, uint64_t *len);

#endif
