/* `semctr embed --config --entity --template`: the rows of a config's side
 * table become texts through a template, one vector per join key, equal to
 * encoding the same text directly. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lm/bert.h"
#include "lm/encoder.h"
#include "lm/qmatmul.h" /* sc_cpu_has_bf16 */
#include "lm/vecstore.h"
#include "test_lm_util.h"

static int run(const char *args, char *out, size_t cap) { return lmt_run_embed(args, out, cap); }

static void write_file(const char *path, const char *body) {
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    fputs(body, f);
    fclose(f);
}

Test(embed_entity, side_table_rows_through_a_template) {
    char dir[] = "/tmp/sc_embed_entity_XXXXXX", path[256], args[1024], out[8192];
    cr_assert(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/items.txt", dir);
    /* Latin-1 bytes (0xE9 = é), as in MovieLens's u.item */
    write_file(path, "1|Toy Story (1995)|0|1\n2|Les Mis\xe9rables (1995)|1|0\n");
    snprintf(path, sizeof path, "%s/ratings.txt", dir);
    write_file(path, "7\t1\t5\n");
    snprintf(path, sizeof path, "%s/c.yaml", dir);
    write_file(path, "input: {path: ratings.txt, format: tsv, columns: [user_id, item_id, rating]}\n"
                     "label: rating >= 4\n"
                     "joins:\n"
                     "  - {name: item, path: items.txt, delimiter: '|', encoding: latin1, key: item_id,\n"
                     "     columns: [item_id, title, Drama, Comedy]}\n"
                     "fields:\n  - {name: item_id, type: categorical}\n"
                     "text:\n  - {name: genres, joiner: ' and ', flags: [Drama, Comedy]}\n"
                     "split: {method: random, fractions: [1, 0, 0]}\n");
    snprintf(args, sizeof args, "--config %s --entity item --template '{title}: {genres}.' --out %s/s.vec", path, dir);
    cr_assert_eq(run(args, out, sizeof out), 0, "%s", out);
    snprintf(path, sizeof path, "%s/s.vec", dir);
    sc_vecstore *s;
    sc_error e;
    cr_assert_eq(sc_vecstore_open(&s, path, 384, &e), SC_OK, "%s", e.msg);
    cr_assert_eq(sc_vecstore_count(s), 2);
    sc_encoder *enc;
    cr_assert_eq(sc_encoder_load(&enc, lmt_model_dir(), 1, &e), SC_OK, "%s", e.msg);
    /* embed's default precision (auto): bfloat16 products where the CPU has AVX512_BF16 */
    cr_assert_eq(sc_bert_set_precision(sc_encoder_bert(enc), sc_cpu_has_bf16() ? SC_BERT_BF16 : SC_BERT_F32, &e), SC_OK);
    const char *texts[2] = {"Toy Story (1995): Comedy.", "Les Mis\xc3\xa9rables (1995): Drama."};
    const char *ids[2] = {"1", "2"};
    float want[384];
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(sc_encoder_encode(enc, &texts[k], 1, want, &e), SC_OK);
        const float *got = sc_vecstore_get(s, ids[k]);
        cr_assert(got, "no vector for id %s", ids[k]);
        for (int i = 0; i < 384; i++) cr_assert_float_eq(got[i], want[i], 1e-5, "id %s dim %d", ids[k], i);
    }
    sc_encoder_free(enc);
    sc_vecstore_close(s);
    /* a template naming a missing column, and an unknown entity, name what is wrong */
    snprintf(path, sizeof path, "%s/c.yaml", dir);
    snprintf(args, sizeof args, "--config %s --entity item --template '{plot}' --out %s/x.vec", path, dir);
    cr_assert_eq(run(args, out, sizeof out), 1);
    cr_assert(strstr(out, "'plot'") && strstr(out, "title"), "%s", out);
    snprintf(args, sizeof args, "--config %s --entity user --template '{x}' --out %s/x.vec", path, dir);
    cr_assert_eq(run(args, out, sizeof out), 1);
    cr_assert(strstr(out, "no join named 'user'") && strstr(out, "item"), "%s", out);
    snprintf(path, sizeof path, "%s/x.vec", dir);
    cr_assert(access(path, F_OK) != 0, "a failed run left a store");
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}
