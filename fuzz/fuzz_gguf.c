/* libFuzzer harness: the GGUF reader on arbitrary bytes, then both
 * tokenizers built from its metadata (byte-level BPE, SentencePiece BPE).
 * `make fuzz && build-fuzz/fuzz_gguf -max_total_time=120`
 * Any accepted image must have every tensor inside the buffer and every
 * string array element readable; a tokenizer that builds must encode. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "lm/gguf.h"
#include "text/bpe.h"
#include "text/spm.h"

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
    static const char text[] = "Hello <|im_start|> w\xc3\xb6rld  12 \xe2\x96\x81 <end_of_turn>";
    int32_t *ids;
    int n;
    sc_bpe *bpe;
    if (sc_bpe_from_gguf(&bpe, &g, &err) == SC_OK) {
        if (sc_bpe_encode(bpe, text, sizeof text - 1, 1, &ids, &n, &err) == SC_OK) sc_free(ids);
        sc_bpe_free(bpe);
    }
    sc_spm *spm;
    if (sc_spm_from_gguf(&spm, &g, &err) == SC_OK) {
        if (sc_spm_encode(spm, text, sizeof text - 1, 1, &ids, &n, &err) == SC_OK) sc_free(ids);
        sc_spm_free(spm);
    }
    sc_gguf_close(&g);
    return 0;
}
