/* lm: `semctr embed` from the user's side: --text prints the vector the
 * library computes; --input writes a store; bad input (an empty line, a
 * repeated id, a --max-length beyond the model) names the line or limit. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "lm/bert.h"
#include "lm/encoder.h"
#include "lm/vecstore.h"
#include "test_lm_util.h"

static int run(const char *args, char *out, size_t cap) { return lmt_run_embed(args, out, cap); }

Test(lm_cli, text_prints_the_library_vector, .timeout = 60) {
    static char out[65536];
    sc_encoder *enc;
    sc_error err;
    cr_assert_eq(sc_encoder_load(&enc, lmt_model_dir(), 1, &err), SC_OK, "%s", err.msg);
    const char *t = "Toy Story (1995). Genres: Animation.";
    /* each --precision gives the library's vector in that precision (the
     * bfloat16 kernels give the same bits on any thread count) */
    static const struct { const char *flag; int precision; } cases[] = {
        {"--precision f32", SC_BERT_F32}, {"--precision bf16", SC_BERT_BF16}};
    for (int c = 0; c < 2; c++) {
        char args[256];
        snprintf(args, sizeof args, "--text '%s' %s", t, cases[c].flag);
        cr_assert_eq(run(args, out, sizeof out), 0, "%s", out);
        float got[400];
        int n = 0;
        for (char *p = out, *e; n < 400; p = e) {
            got[n] = strtof(p, &e);
            if (e == p) break;
            n++;
        }
        cr_assert_eq(n, 384, "%d numbers: %.200s", n, out);
        cr_assert_eq(sc_bert_set_precision(sc_encoder_bert(enc), cases[c].precision, &err), SC_OK, "%s", err.msg);
        float want[384];
        cr_assert_eq(sc_encoder_encode(enc, &t, 1, want, &err), SC_OK);
        for (int i = 0; i < 384; i++) cr_assert_float_eq(got[i], want[i], 1e-6, "%s dim %d", cases[c].flag, i);
    }
    sc_encoder_free(enc);
}

Test(lm_cli, precision_values_and_decoders, .timeout = 60) {
    static char out[65536];
    cr_assert_eq(run("--text x --precision f16", out, sizeof out), 2, "%s", out);
    cr_assert(strstr(out, "--precision 'f16': use auto, f32 or bf16"), "%s", out);
    cr_assert_eq(run("--text x --precision auto", out, sizeof out), 0, "%s", out);
}

Test(lm_cli, input_file_to_store, .timeout = 60) {
    char in[] = "/tmp/sc_embed_in_XXXXXX", store[64];
    int fd = mkstemp(in);
    cr_assert(fd >= 0);
    const char *body = "m1\tToy Story (1995)\nplain line without id\nm3\tbad \xff utf-8 \xc3\n";
    cr_assert_eq(write(fd, body, strlen(body)), (ssize_t)strlen(body));
    close(fd);
    snprintf(store, sizeof store, "%s.vs", in);
    static char out[65536], args[512];
    snprintf(args, sizeof args, "--input %s --out %s --batch 2 --threads 2 --precision f32", in, store);
    cr_assert_eq(run(args, out, sizeof out), 0, "%s", out);
    sc_vecstore *s;
    sc_error err;
    cr_assert_eq(sc_vecstore_open(&s, store, 384, &err), SC_OK, "%s", err.msg);
    cr_assert_eq(sc_vecstore_count(s), 3);
    cr_assert_str_eq(sc_vecstore_model(s), "all-MiniLM-L6-v2");
    cr_assert_not_null(sc_vecstore_get(s, "m1"));
    cr_assert_not_null(sc_vecstore_get(s, "2")); /* line number as id */
    const float *v = sc_vecstore_get(s, "m3");
    cr_assert_not_null(v);
    double nrm = 0;
    for (int i = 0; i < 384; i++) nrm += (double)v[i] * v[i];
    cr_assert_float_eq(nrm, 1.0, 1e-5);
    /* invalid bytes are dropped: the same vector as the clean text */
    sc_encoder *enc;
    cr_assert_eq(sc_encoder_load(&enc, lmt_model_dir(), 1, &err), SC_OK);
    const char *clean = "bad  utf-8 ";
    float want[384];
    cr_assert_eq(sc_encoder_encode(enc, &clean, 1, want, &err), SC_OK);
    for (int i = 0; i < 384; i++) cr_assert_float_eq(v[i], want[i], 1e-5);
    sc_encoder_free(enc);
    sc_vecstore_close(s);
    unlink(store);
    unlink(in);
}

Test(lm_cli, bad_input_names_the_line) {
    char in[] = "/tmp/sc_embed_bad_XXXXXX";
    int fd = mkstemp(in);
    const char *body = "a\tfirst\n\nthird\n";
    cr_assert_eq(write(fd, body, strlen(body)), (ssize_t)strlen(body));
    close(fd);
    static char out[4096], args[512];
    snprintf(args, sizeof args, "--input %s --out /tmp/never.vs", in);
    cr_assert_eq(run(args, out, sizeof out), 1);
    char want[128];
    snprintf(want, sizeof want, "%s:2: empty line", in);
    cr_assert(strstr(out, want), "%s", out);
    cr_assert_eq(access("/tmp/never.vs", F_OK), -1);
    cr_assert_eq(run("--input /nonexistent.txt --out /tmp/never.vs", out, sizeof out), 1);
    cr_assert(strstr(out, "/nonexistent.txt"), "%s", out);
    cr_assert_eq(run("--text x --model /nonexistent-model", out, sizeof out), 1);
    cr_assert(strstr(out, "/nonexistent-model"), "%s", out);
    cr_assert_eq(run("--input only.txt", out, sizeof out), 2);
    unlink(in);
}

Test(lm_cli, repeated_id_names_file_and_both_lines) {
    char in[] = "/tmp/sc_embed_dup_XXXXXX";
    int fd = mkstemp(in);
    const char *body = "a\tfirst\nb\tsecond\n1\tthird\nfourth\na\tfifth\n"; /* line 4's id is "4" */
    cr_assert_eq(write(fd, body, strlen(body)), (ssize_t)strlen(body));
    close(fd);
    static char out[4096], args[512], want[256];
    snprintf(args, sizeof args, "--input %s --out /tmp/never.vs", in);
    cr_assert_eq(run(args, out, sizeof out), 1, "%s", out);
    snprintf(want, sizeof want, "%s:5: id 'a' is already the id of line 1", in);
    cr_assert(strstr(out, want), "%s", out);
    cr_assert_eq(access("/tmp/never.vs", F_OK), -1);
    /* a line number taken as an id clashes with an explicit one too */
    const char *body2 = "2\tfirst\nsecond\n";
    FILE *f = fopen(in, "w");
    fputs(body2, f);
    fclose(f);
    cr_assert_eq(run(args, out, sizeof out), 1, "%s", out);
    snprintf(want, sizeof want, "%s:2: id '2' is already the id of line 1", in);
    cr_assert(strstr(out, want), "%s", out);
    unlink(in);
}

Test(lm_cli, max_length_beyond_the_model_names_its_limit, .timeout = 60) {
    static char out[65536];
    cr_assert_eq(run("--text x --max-length 513", out, sizeof out), 2, "%s", out);
    cr_assert(strstr(out, "--max-length 513 is beyond all-MiniLM-L6-v2's limit of 512 tokens"), "%s", out);
    cr_assert_eq(run("--text x --max-length 512", out, sizeof out), 0, "%s", out);
}
