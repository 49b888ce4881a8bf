/* `semctr embed --model FILE.gguf`: a decoder's sentence vector is the
 * L2-normalised mean of its last hidden states, as sc_llama_embed gives. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "lm/llama.h"
#include "test_gguf_util.h"

Test(embed_gguf, text_vector_is_the_normalised_mean_hidden_state) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' embed --model '%s' --text 'Toy Story (1995)' 2>&1", getenv("SEMCTR_BIN"),
             ggt_model_path());
    FILE *p = popen(cmd, "r");
    static char out[1 << 16];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    cr_assert_eq(pclose(p), 0, "%s", out);
    sc_llama *m;
    sc_error e;
    cr_assert_eq(sc_llama_load(&m, ggt_model_path(), 512, &e), SC_OK, "%s", e.msg);
    int D = m->cfg.dim;
    float *want = malloc(D * sizeof *want);
    cr_assert_eq(sc_llama_embed(m, "Toy Story (1995)", want, &e), SC_OK, "%s", e.msg);
    double ss = 0;
    for (int i = 0; i < D; i++) ss += (double)want[i] * want[i];
    int k = 0;
    for (char *s = out, *end; k < D; s = end, k++) {
        float got = strtof(s, &end);
        cr_assert(end != s, "only %d numbers: %.200s", k, out);
        cr_assert_float_eq(got, want[k] / sqrt(ss), 1e-6, "dim %d", k);
    }
    free(want);
    sc_llama_free(m);
}
