/* libFuzzer harness: the safetensors header parser on arbitrary bytes.
 * `make fuzz && build-fuzz/fuzz_safetensors -max_total_time=60`
 * Any accepted image must have tensors that tile its data buffer. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/alloc.h"
#include "lm/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sc_safetensors st;
    sc_error err;
    if (sc_st_parse(&st, data, size, "fuzz", &err) != SC_OK) return 0;
    size_t at = 0;
    for (int i = 0; i < st.n; i++) {
        const sc_st_tensor *t = &st.tensors[i];
        if (t->begin != at || t->end < t->begin) abort();
        if (t->data + (t->end - t->begin) > data + size) abort();
        at = t->end;
        if (t->dtype == SC_DT_F32 || t->dtype == SC_DT_F16 || t->dtype == SC_DT_BF16) {
            float *f;
            int owned;
            if (sc_st_get_f32(&st, t->name, t->ndim, t->shape, &f, &owned, &err) == SC_OK && owned) {
                volatile float sink = t->numel ? f[t->numel - 1] : 0;
                (void)sink;
                sc_free(f);
            }
        }
    }
    sc_st_close(&st);
    return 0;
}
