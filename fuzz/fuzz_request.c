/* libFuzzer harness for the prediction request parser (src/serve/request.c):
 * any bytes must give either a grid whose every cell is NULL, a string
 * inside the body (NUL-terminated there, holding no NUL before its end) or a
 * number's text, within the limits; or a refusal with a kind and a message
 * that is valid UTF-8. Never a crash, a leak or a byte touched outside the
 * body. When the parse succeeds and cJSON reads the same bytes, every cell
 * must equal cJSON's value (the parser is checked against a second reader).
 * Build: make fuzz; run on a copy of the seeds (libFuzzer adds to its corpus):
 *   cp -r fuzz/corpus/request /tmp/req && build-fuzz/fuzz_request -max_total_time=60 /tmp/req */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "serve/request.h"
#include "serve/scorer.h"

static const char *const KNOWN[] = {"user_id", "item_id", "age", "genres", "history"};
enum { N_KNOWN = 5 };

static int valid_utf8(const unsigned char *s) {
    while (*s) {
        int l = *s < 0x80 ? 1 : (*s & 0xE0) == 0xC0 ? 2 : (*s & 0xF0) == 0xE0 ? 3 : (*s & 0xF8) == 0xF0 ? 4 : 0;
        if (!l) return 0;
        for (int k = 1; k < l; k++)
            if ((s[k] & 0xC0) != 0x80) return 0;
        s += l;
    }
    return 1;
}

/* The value cJSON gives row r, column c of the request doc, as a cell. */
static const char *cjson_cell(const cJSON *doc, int r, int c, char num[32]) {
    const cJSON *v = NULL, *inst = cJSON_GetObjectItemCaseSensitive(doc, "instances");
    if (inst) v = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(inst, r), KNOWN[c]);
    else v = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "inputs"), KNOWN[c]), r);
    if (!v || cJSON_IsNull(v)) return NULL;
    if (cJSON_IsNumber(v)) return sc_format_number(v->valuedouble, num);
    return v->valuestring;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* The first byte picks the limits, so both policies are explored. */
    sc_request_limits lim = {size && (data[0] & 1) ? 3 : 1000, size && (data[0] & 2)};
    char *body = malloc(size ? size : 1); /* exactly the body: ASan sees a write past it */
    if (!body) return 0;
    memcpy(body, data, size);
    sc_request q;
    sc_req_error kind;
    sc_error err = {0};
    int rc = sc_request_parse(body, size, KNOWN, N_KNOWN, &lim, &q, &kind, &err);
    if (rc == 0) {
        if (q.n_rows < 1 || q.n_rows > lim.max_instances || q.n_cols != N_KNOWN) __builtin_trap();
        cJSON *doc = cJSON_ParseWithLength((const char *)data, size);
        for (int i = 0; i < q.n_rows * q.n_cols; i++) {
            const char *c = q.cells[i];
            if (!c) continue;
            int in_body = c >= body && c < body + size;
            if (in_body && !memchr(c, '\0', (size_t)(body + size - c))) __builtin_trap();
            if (!in_body && (c < q.numbers || c >= q.numbers + 32 * (size_t)q.n_rows * N_KNOWN)) __builtin_trap();
        }
        /* cJSON reads some bodies this parser refuses (and the reverse for long numbers): compare where both read */
        for (int i = 0; doc && i < q.n_rows * q.n_cols && !lim.ignore_unknown; i++) {
            char num[32];
            const char *want = cjson_cell(doc, i / N_KNOWN, i % N_KNOWN, num), *got = q.cells[i];
            if (!want != !got || (want && strcmp(want, got))) __builtin_trap();
        }
        cJSON_Delete(doc);
    } else if (kind == SC_REQ_OK || !err.msg[0] || !valid_utf8((const unsigned char *)err.msg)) {
        __builtin_trap();
    }
    sc_request_free(&q);
    free(body);
    return 0;
}
