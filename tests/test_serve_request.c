/* Request bodies -> cell grids: both TensorFlow Serving shapes, every kind
 * of refusal with a message that says where, number formatting. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "serve/request.h"
#include "serve/scorer.h"

static const char *const KNOWN[] = {"user_id", "item_id", "age"};
static const sc_request_limits LIM = {100, 0};

/* The parser decodes strings in place and cells point into the body: each
 * test's bodies are copies that live until the test ends. */
static char *bodies[64];
static int n_bodies;
static void free_bodies(void) {
    for (int i = 0; i < n_bodies; i++) free(bodies[i]);
    n_bodies = 0;
}
TestSuite(serve_request, .fini = free_bodies);

static int parse_n(const char *body, size_t len, const sc_request_limits *lim, sc_request *q, sc_req_error *kind,
                   sc_error *err) {
    cr_assert_lt(n_bodies, 64);
    char *copy = malloc(len + 1);
    cr_assert(copy);
    memcpy(copy, body, len + 1);
    bodies[n_bodies++] = copy;
    return sc_request_parse(copy, len, KNOWN, 3, lim ? lim : &LIM, q, kind, err);
}

static int parse(const char *body, const sc_request_limits *lim, sc_request *q, sc_req_error *kind, sc_error *err) {
    return parse_n(body, strlen(body), lim, q, kind, err);
}

#define CELL(q, r, c) ((q).cells[(r) * (q).n_cols + (c)])

Test(serve_request, rows_and_columns_give_the_same_grid) {
    sc_request a, b;
    sc_req_error k;
    sc_error err = {0};
    cr_assert_eq(parse("{\"instances\": [{\"user_id\": \"196\", \"item_id\": 242, \"age\": null},"
                       " {\"item_id\": \"302\", \"user_id\": 186.5}]}", NULL, &a, &k, &err), 0, "%s", err.msg);
    cr_assert_eq(parse("{\"signature_name\": \"x\", \"inputs\": {\"item_id\": [242, \"302\"], "
                       "\"user_id\": [\"196\", 186.5], \"age\": [null, null]}}", NULL, &b, &k, &err), 0, "%s", err.msg);
    cr_assert_eq(a.n_rows, 2);
    cr_assert_eq(a.n_cols, 3);
    cr_assert_eq(b.n_rows, 2);
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 3; c++) {
            const char *x = CELL(a, r, c), *y = CELL(b, r, c);
            cr_assert((!x && !y) || (x && y && !strcmp(x, y)), "cell %d,%d: %s vs %s", r, c, x ? x : "NULL", y ? y : "NULL");
        }
    cr_assert_str_eq(CELL(a, 0, 0), "196");
    cr_assert_str_eq(CELL(a, 0, 1), "242");
    cr_assert_null(CELL(a, 0, 2));
    cr_assert_str_eq(CELL(a, 1, 0), "186.5");
    cr_assert_null(CELL(a, 1, 2), "a column a row lacks is missing");
    sc_request_free(&a);
    sc_request_free(&b);
}

static void refused(const char *body, const sc_request_limits *lim, sc_req_error want, const char *where) {
    sc_request q;
    sc_req_error k = SC_REQ_OK;
    sc_error err = {0};
    cr_assert_neq(parse(body, lim, &q, &k, &err), 0, "accepted: %s", body);
    cr_assert_eq(k, want, "%s: kind %s, expected %s (%s)", body, sc_req_error_name(k), sc_req_error_name(want), err.msg);
    cr_assert(strstr(err.msg, where), "%s: message '%s' lacks '%s'", body, err.msg, where);
    cr_assert_null(q.cells);
    sc_request_free(&q);
}

Test(serve_request, refusals_say_what_and_where) {
    refused("", NULL, SC_REQ_BAD_JSON, "empty");
    refused("{\"instances\": [", NULL, SC_REQ_BAD_JSON, "byte");
    refused("{\"instances\": []} x", NULL, SC_REQ_BAD_JSON, "after the JSON");
    refused("[1, 2]", NULL, SC_REQ_BAD_SHAPE, "an array");
    refused("{\"rows\": []}", NULL, SC_REQ_BAD_SHAPE, "rows");
    refused("{}", NULL, SC_REQ_BAD_SHAPE, "neither");
    refused("{\"instances\": [], \"inputs\": {}}", NULL, SC_REQ_BAD_SHAPE, "not both");
    refused("{\"instances\": {\"user_id\": 1}}", NULL, SC_REQ_BAD_SHAPE, "array of objects");
    refused("{\"instances\": [{\"user_id\": 1}, 7]}", NULL, SC_REQ_BAD_SHAPE, "instances[1]");
    refused("{\"instances\": []}", NULL, SC_REQ_EMPTY, "no instances");
    refused("{\"inputs\": {}}", NULL, SC_REQ_EMPTY, "no columns");
    refused("{\"instances\": [{\"user_id\": 1}, {\"user_id\": true}]}", NULL, SC_REQ_BAD_TYPE, "instances[1].user_id");
    refused("{\"instances\": [{\"item_id\": [1, 2]}]}", NULL, SC_REQ_BAD_TYPE, "an array");
    refused("{\"instances\": [{\"item_id\": {\"a\": 1}}]}", NULL, SC_REQ_BAD_TYPE, "an object");
    refused("{\"instances\": [{\"user_id\": 1, \"colour\": \"red\"}]}", NULL, SC_REQ_UNKNOWN_FIELD, "instances[0].colour");
    refused("{\"instances\": [{\"user_id\": 1, \"user_id\": 2}]}", NULL, SC_REQ_BAD_SHAPE, "twice");
    refused("{\"inputs\": {\"user_id\": [1, 2], \"item_id\": [3]}}", NULL, SC_REQ_BAD_SHAPE, "inputs.item_id");
    refused("{\"inputs\": {\"user_id\": 1}}", NULL, SC_REQ_BAD_SHAPE, "inputs.user_id");
    refused("{\"inputs\": {\"user_id\": [1], \"nope\": [2]}}", NULL, SC_REQ_UNKNOWN_FIELD, "inputs.nope");
    refused("{\"inputs\": {\"user_id\": [1, false]}}", NULL, SC_REQ_BAD_TYPE, "inputs.user_id[1]");
    sc_request_limits two = {2, 0};
    refused("{\"instances\": [{}, {}, {}]}", &two, SC_REQ_TOO_MANY, "limit is 2");
}

Test(serve_request, unknown_columns_can_be_ignored) {
    sc_request_limits lim = {10, 1};
    sc_request q;
    sc_error err = {0};
    cr_assert_eq(parse("{\"instances\": [{\"user_id\": 1, \"colour\": [\"red\"]}]}", &lim, &q, NULL, &err), 0, "%s", err.msg);
    cr_assert_str_eq(CELL(q, 0, 0), "1");
    sc_request_free(&q);
}

Test(serve_request, numbers_read_as_a_click_log_writes_them) {
    char b[32];
    cr_assert_str_eq(sc_format_number(242, b), "242");
    cr_assert_str_eq(sc_format_number(-0.0, b), "0");
    cr_assert_str_eq(sc_format_number(0.5, b), "0.5");
    cr_assert_str_eq(sc_format_number(0.1, b), "0.1");
    cr_assert_str_eq(sc_format_number(-17, b), "-17");
    cr_assert_str_eq(sc_format_number(1e20, b), "1e+20");
    cr_assert_eq(strtod(sc_format_number(1.0 / 3, b), NULL), 1.0 / 3);
}

Test(serve_request, predictions_json_reads_back) {
    float p[3] = {0.25f, 0.123456789f, 1e-7f};
    size_t len;
    char *s = sc_predictions_json(p, 3, &len);
    cr_assert_not_null(s);
    cr_assert_eq(strlen(s), len);
    cr_assert(!strncmp(s, "{\"predictions\":[0.25,", 21), "%s", s);
    char *q = strchr(s, ',') + 1;
    cr_assert_eq((float)strtod(q, NULL), p[1]);
    free(s);
}

Test(serve_request, escapes_decode_in_place_keys_included) {
    sc_request q;
    sc_error err = {0};
    cr_assert_eq(parse("{\"instances\": [{\"user\\u005fid\": \"caf\\u00e9 \\ud83d\\ude00\\t\\\"q\\\"\\/\", "
                       "\"item_id\": \"\\\\\", \"age\": -0.0e0}]}", NULL, &q, NULL, &err), 0, "%s", err.msg);
    cr_assert_str_eq(CELL(q, 0, 0), "caf\xc3\xa9 \xf0\x9f\x98\x80\t\"q\"/");
    cr_assert_str_eq(CELL(q, 0, 1), "\\");
    cr_assert_str_eq(CELL(q, 0, 2), "0");
    sc_request_free(&q);
}

/* "19\u0000zzz" used to be read as "19": a NUL in a value is refused, a NUL
 * in a key names no column (and is shown as \x00). */
Test(serve_request, nul_and_bytes_that_are_not_text) {
    refused("{\"instances\": [{\"user_id\": \"19\\u0000zzz\"}]}", NULL, SC_REQ_BAD_VALUE, "instances[0].user_id: the string holds a NUL");
    refused("{\"inputs\": {\"user_id\": [\"1\", \"a\\u0000\"]}}", NULL, SC_REQ_BAD_VALUE, "inputs.user_id[1]");
    refused("{\"instances\": [{\"user_id\\u0000\": 1}]}", NULL, SC_REQ_UNKNOWN_FIELD, "instances[0].user_id\\x00:");
    refused("{\"instances\": [{\"\xff\xfe\\n\": 1}]}", NULL, SC_REQ_UNKNOWN_FIELD, "instances[0].\\xff\\xfe\\x0a:");
    refused("{\"instances\": [{\"user_id\": \"\\ud83d\"}]}", NULL, SC_REQ_BAD_JSON, "surrogate");
    refused("{\"instances\": [{\"user_id\": \"\\ude00\"}]}", NULL, SC_REQ_BAD_JSON, "surrogate");
    refused("{\"instances\": [{\"user_id\": \"a\tb\"}]}", NULL, SC_REQ_BAD_JSON, "control character");
    refused("{\"instances\": [{\"user_id\": \"\\x\"}]}", NULL, SC_REQ_BAD_JSON, "invalid escape");
    /* bytes of 0x80 and above are taken as they are (a Latin-1 click log's ids) */
    sc_request q;
    sc_error err = {0};
    cr_assert_eq(parse("{\"instances\": [{\"user_id\": \"Mis\xe9rables\"}]}", NULL, &q, NULL, &err), 0, "%s", err.msg);
    cr_assert_str_eq(CELL(q, 0, 0), "Mis\xe9rables");
    sc_request_free(&q);
    /* a NUL after the value (a C string's terminator) is not trailing garbage */
    cr_assert_eq(parse_n("{\"inputs\": {\"age\": [1]}}\n\0", 25, NULL, &q, NULL, &err), 0, "%s", err.msg);
    sc_request_free(&q);
}

Test(serve_request, numbers_by_the_json_grammar) {
    refused("{\"instances\": [{\"age\": 1e999}]}", NULL, SC_REQ_BAD_VALUE, "out of range");
    refused("{\"instances\": [{\"age\": 01}]}", NULL, SC_REQ_BAD_JSON, "expected ',' or '}'");
    refused("{\"instances\": [{\"age\": 1.}]}", NULL, SC_REQ_BAD_JSON, "malformed number");
    refused("{\"instances\": [{\"age\": -}]}", NULL, SC_REQ_BAD_JSON, "malformed number");
    refused("{\"instances\": [{\"age\": +1}]}", NULL, SC_REQ_BAD_JSON, "expected a value");
    char big[600] = "{\"instances\": [{\"age\": 1";
    for (int i = 0; i < 450; i++) strcat(big, "0");
    strcat(big, "}]}");
    refused(big, NULL, SC_REQ_BAD_VALUE, "a number of 451 characters");
}

/* The limits apply where they are met, before the rest of the body is read:
 * the garbage after the first row past the limit, or after an array in a
 * cell, is never reached. */
Test(serve_request, limits_apply_while_reading) {
    sc_request_limits two = {2, 0}, ignore = {5, 1};
    refused("{\"instances\": [{}, {}, {}, this is never read", &two, SC_REQ_TOO_MANY, "more than 2 instances: the limit is 2");
    refused("{\"inputs\": {\"age\": [1, 2, 3, never read", &two, SC_REQ_TOO_MANY, "the limit is 2");
    refused("{\"instances\": [{\"user_id\": [1, 2, never read", NULL, SC_REQ_BAD_TYPE, "got an array");
    refused("{\"inputs\": {\"age\": [1, 2], \"user_id\": [1, 2, 3, never read", NULL, SC_REQ_BAD_SHAPE,
            "inputs.user_id: has more values than the first column (2)");
    /* a column the model does not read is skipped whatever it holds, nested up to 64 levels */
    char deep[400] = "{\"instances\": [{\"colour\": ";
    for (int i = 0; i < 65; i++) strcat(deep, "[");
    for (int i = 0; i < 65; i++) strcat(deep, "]");
    strcat(deep, ", \"age\": 3}]}");
    refused(deep, &ignore, SC_REQ_BAD_SHAPE, "nested deeper than 64 levels");
    sc_request q;
    sc_error err = {0};
    cr_assert_eq(parse("{\"signature_name\": {\"a\": [1, {\"b\": null}]}, \"inputs\": {\"x\": {\"y\": [true]}, "
                       "\"age\": [3, null], \"z\": \"s\"}}", &ignore, &q, NULL, &err), 0, "%s", err.msg);
    cr_assert_eq(q.n_rows, 2);
    cr_assert_str_eq(CELL(q, 0, 2), "3");
    cr_assert_null(CELL(q, 1, 2));
    sc_request_free(&q);
    refused("{\"instances\": [], \"instances\": []}", NULL, SC_REQ_BAD_SHAPE, "\"instances\" appears twice");
    refused("{\"inputs\": {\"age\": [1]}, \"instances\": [{}]}", NULL, SC_REQ_BAD_SHAPE, "not both");
}
