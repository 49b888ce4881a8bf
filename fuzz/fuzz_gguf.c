/* libFuzzer harness: the GGUF reader on arbitrary bytes.
 * `make fuzz && build-fuzz/fuzz_gguf -max_total_time=120`
 * Any accepted image must have every tensor inside the buffer and every
 * string array element readable. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lm/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sc_gguf g;
    sc_error err;
    if (sc_gguf_parse(&g, data, size, "fuzz", &err) != SC_OK) return 0;
    for (int64_t i = 0; i < g.n_tensors; i++) {
        const sc_gguf_tensor *t = &g.tensors[i];
        if (t->data < data || t->data + t->nbytes > data + size) abort();
        if (t->nbytes) {
            volatile uint8_t sink = t->data[t->nbytes - 1];
            (void)sink;
        }
    }
    for (int64_t i = 0; i < g.n_kv; i++) {
        const sc_gguf_kv *kv = &g.kv[i];
        if (kv->type == SC_GGUF_ARRAY && kv->arr_type == SC_GGUF_STRING) {
            for (uint64_t k = 0; k < kv->arr_n; k++) {
                const char *s;
                uint64_t n;
                if (sc_gguf_arr_str(kv, k, &s, &n) != SC_OK) abort();
                if ((const uint8_t *)s + n > data + size) abort();
            }
        }
    }
    sc_gguf_close(&g);
    return 0;
}
