/* Parsing of prediction request bodies (TensorFlow Serving REST shape) into
 * a (rows, columns) grid of raw cells for sc_scorer_score, and writing the
 * response. The body is untrusted: every failure is a status with a message
 * that says what is wrong and where ("instances[3].user_id: ..."), and an
 * error kind for the metrics.
 *
 * Accepted bodies (JSON object; "signature_name" is accepted and ignored):
 *   {"instances": [{"user_id": "196", "item_id": 242}, ...]}     row form
 *   {"inputs": {"user_id": ["196", "186"], "item_id": [242, 302]}} columnar
 * A value is a string (taken as is; one holding U+0000 is refused, since no
 * cell can hold it), a finite number (its click-log text, sc_format_number)
 * or null (missing). Columns the model reads but a row lacks are missing
 * (the schema's OOV / default policy). Columns the model does not read are
 * an error unless ignore_unknown is set, and then skipped whatever they hold.
 *
 * Memory: the parser builds no document. It reads the body twice, checking
 * the limits as it goes (the first row past max_instances, the first array
 * or object in a cell, nesting past 64 levels in a skipped value are refused
 * where they stand), and decodes strings in place, so a request costs its
 * body plus 8 bytes per cell and 32 bytes per numeric cell of the grid
 * (max_instances x columns at most), whatever the body holds. */
#ifndef SC_SERVE_REQUEST_H
#define SC_SERVE_REQUEST_H

#include <stddef.h>

#include "base/error.h"

/* Why a request was refused: a label of semctr_request_errors_total. */
typedef enum sc_req_error {
    SC_REQ_OK = 0,
    SC_REQ_BAD_JSON,      /* not JSON, or trailing bytes */
    SC_REQ_BAD_SHAPE,     /* not the instances / inputs shape */
    SC_REQ_BAD_TYPE,      /* a value of a type that is not string, number or null */
    SC_REQ_BAD_VALUE,     /* a string holding U+0000, a number out of range or too long */
    SC_REQ_UNKNOWN_FIELD, /* a column the model does not read */
    SC_REQ_EMPTY,         /* no instances */
    SC_REQ_TOO_MANY,      /* more instances than allowed */
    SC_REQ_NO_MEMORY,
    SC_REQ_KIND_COUNT
} sc_req_error;

/* "bad_json", "bad_shape", ... */
const char *sc_req_error_name(sc_req_error k);

typedef struct sc_request_limits {
    int max_instances;  /* > 0 */
    int ignore_unknown; /* 1: drop columns the model does not read */
} sc_request_limits;

/* A parsed request: n_rows x n_cols cells (row-major, NULL = missing) for
 * the columns col_names, which are the known columns passed to the parser
 * (so n_cols = n_known). String cells point into the body. */
typedef struct sc_request {
    int n_rows, n_cols;
    const char *const *col_names; /* borrowed from the caller of sc_request_parse */
    const char **cells;           /* (n_rows, n_cols) owned */
    char *numbers;                /* text of numeric cells, 32 bytes per cell */
} sc_request;

/* Parse body[0..len) (need not be NUL-terminated). The body is the
 * caller's and is overwritten: string values are decoded in place and the
 * cells point into it, so it must outlive req. known (n_known) are the
 * columns the model reads. On failure returns SC_EINVAL (or SC_ENOMEM), sets
 * *kind and err (a message that is valid UTF-8: bytes that are not, and
 * control characters, of a key it quotes are written \xNN), and leaves req
 * empty; req needs sc_request_free either way. */
int sc_request_parse(char *body, size_t len, const char *const *known, int n_known, const sc_request_limits *lim,
                     sc_request *req, sc_req_error *kind, sc_error *err);
void sc_request_free(sc_request *req);

/* {"predictions": [p0, p1, ...]} in a malloc'ed (not sc_malloc'ed: the HTTP
 * library frees it with free()) NUL-terminated buffer; NULL when out of memory. */
char *sc_predictions_json(const float *probs, int n, size_t *len);

/* text as a JSON string literal, quotes included, in a malloc'ed buffer
 * (free()): '"', '\\' and control characters escaped, and each byte that is
 * not part of valid UTF-8 written as the text \xNN, so the result is valid
 * UTF-8 whatever text holds (an error message can quote a URL or a key).
 * NULL when out of memory. */
char *sc_json_quote(const char *text);

#endif
