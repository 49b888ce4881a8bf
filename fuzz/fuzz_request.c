/* libFuzzer harness for the prediction request parser (src/serve/request.c):
 * any bytes must give either a grid whose every cell is NULL or a
 * NUL-terminated string, or a refusal with a kind and a message; never a
 * crash, a leak or a read outside the body. Build: make fuzz; run:
 * build-fuzz/fuzz_request -max_total_time=60 fuzz/corpus-request */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "serve/request.h"

static const char *const KNOWN[] = {"user_id", "item_id", "age", "genres", "history"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* The first byte picks the limits, so both policies are explored. */
    sc_request_limits lim = {size && (data[0] & 1) ? 3 : 1000, size && (data[0] & 2)};
    sc_request q;
    sc_req_error kind;
    sc_error err = {0};
    int rc = sc_request_parse((const char *)data, size, KNOWN, 5, &lim, &q, &kind, &err);
    if (rc == 0) {
        if (q.n_rows < 1 || q.n_rows > lim.max_instances || q.n_cols != 5) __builtin_trap();
        size_t total = 0;
        for (int i = 0; i < q.n_rows * q.n_cols; i++)
            if (q.cells[i]) total += strlen(q.cells[i]);
        (void)total;
    } else if (kind == SC_REQ_OK || !err.msg[0]) {
        __builtin_trap();
    }
    sc_request_free(&q);
    return 0;
}
