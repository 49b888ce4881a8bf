/* Training, evaluation, prediction, export and ELEC from the user's side:
 * the real `semctr` binary on the real MovieLens-100K data. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/file.h"
#include "train/container.h"
#include "test_cli_util.h"
#include "test_gguf_util.h"


/* A fresh temp dir with ml-100k prepared in DIR/data. */
static void prepare(char *dir) {
    strcpy(dir, "/tmp/sc_train_cli_XXXXXX");
    cr_assert(mkdtemp(dir));
    cr_assert_eq(tcli_semctr("prepare --config configs/ml-100k.yaml --out %s/data", dir), 0, "%s", tcli_out());
}

static void cleanup(const char *dir) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

Test(train_cli, deepfm_learns_movielens, .timeout = 300) {
    char d[64];
    prepare(d);
    cr_assert_eq(tcli_semctr("train --data %s/data --model deepfm --out %s/m --epochs 2 --seed 1 --log %s/log", d, d, d), 0,
                 "%s", tcli_out());
    cr_assert_eq(tcli_semctr("eval --model %s/m --data %s/data --split test --json", d, d), 0, "%s", tcli_out());
    /* A trained DeepFM on this split reaches ~0.71-0.72 test AUC; chance is 0.5. */
    double auc = tcli_json_number(tcli_out(), "auc"), gauc = tcli_json_number(tcli_out(), "gauc");
    cr_assert(auc > 0.69 && auc < 0.80, "test AUC %f", auc);
    cr_assert(gauc > 0.65, "test gAUC %f", gauc);
    cr_assert(tcli_json_number(tcli_out(), "logloss") < 0.66);
    cr_assert_eq(tcli_json_number(tcli_out(), "n"), 10000);
    char path[128], *log;
    size_t n;
    snprintf(path, sizeof path, "%s/log", d);
    cr_assert_eq(sc_read_file(path, &log, &n, NULL), SC_OK);
    cr_assert(strstr(log, "\"epoch\": 1") && strstr(log, "\"valid_auc\""), "%s", log);
    sc_free(log);
    cleanup(d);
}

Test(train_cli, same_seed_same_model_file, .timeout = 300) {
    char d[64];
    prepare(d);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(tcli_semctr("train --data %s/data --model dcnv2 --out %s/m%d --epochs 1 --seed 7 --threads 2", d, d, i),
                     0, "%s", tcli_out());
    char cmd[256];
    snprintf(cmd, sizeof cmd, "cmp -s %s/m0 %s/m1", d, d);
    cr_assert_eq(system(cmd), 0, "two runs with the same seed and threads wrote different model files");
    cleanup(d);
}

Test(train_cli, predict_scores_raw_rows_with_unknown_values, .timeout = 300) {
    char d[64], path[128];
    prepare(d);
    cr_assert_eq(tcli_semctr("train --data %s/data --model fm --out %s/m --epochs 1", d, d), 0, "%s", tcli_out());
    snprintf(path, sizeof path, "%s/in.csv", d);
    FILE *f = fopen(path, "w");
    fputs("user_id,item_id,rating,timestamp\n196,242,3,881250949\nno-such-user,999999,,\n", f);
    fclose(f);
    cr_assert_eq(tcli_semctr("predict --model %s/m --input %s/in.csv --output %s/out.csv --id-column item_id", d, d, d), 0,
                 "%s", tcli_out());
    snprintf(path, sizeof path, "%s/out.csv", d);
    char *txt;
    size_t n;
    cr_assert_eq(sc_read_file(path, &txt, &n, NULL), SC_OK);
    char id1[32], id2[32];
    double p1, p2;
    cr_assert_eq(sscanf(txt, "item_id,score\n%31[^,],%lf\n%31[^,],%lf", id1, &p1, id2, &p2), 4, "%s", txt);
    cr_assert_str_eq(id1, "242");
    cr_assert_str_eq(id2, "999999");
    cr_assert(p1 > 0 && p1 < 1 && p2 > 0 && p2 < 1);
    sc_free(txt);
    cleanup(d);
}

Test(train_cli, bad_model_files_are_refused_by_name, .timeout = 300) {
    char d[64], cmd[512];
    prepare(d);
    cr_assert_eq(tcli_semctr("train --data %s/data --model lr --out %s/m --epochs 1", d, d), 0, "%s", tcli_out());
    snprintf(cmd, sizeof cmd, "head -c 1000 %s/m > %s/cut", d, d);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(tcli_semctr("eval --model %s/cut --data %s/data", d, d), 1);
    cr_assert(strstr(tcli_out(), "/cut") && strstr(tcli_out(), "truncated"), "%s", tcli_out());
    cr_assert_eq(tcli_semctr("eval --model %s/data/schema.scs --data %s/data", d, d), 1);
    cr_assert(strstr(tcli_out(), "not a semctr model"), "%s", tcli_out());
    cr_assert_eq(tcli_semctr("eval --model %s/m --data %s/data --split nope", d, d), 2);
    cr_assert_eq(tcli_semctr("train --data %s/data --model nosuch --out %s/x", d, d), 2);
    cr_assert(strstr(tcli_out(), "unknown model 'nosuch'"), "%s", tcli_out());
    cr_assert_eq(tcli_semctr("train --data %s/missing --model lr --out %s/x", d, d), 1);
    cr_assert(strstr(tcli_out(), "missing"), "%s", tcli_out());
    cr_assert_eq(tcli_semctr("export --model %s/m --network vanilla --out %s/x", d, d), 1);
    cr_assert(strstr(tcli_out(), "no network 'vanilla'"), "%s", tcli_out());
    cleanup(d);
}

Test(train_cli, resume_continues_after_the_last_epoch, .timeout = 300) {
    char d[64];
    prepare(d);
    cr_assert_eq(tcli_semctr("train --data %s/data --model dnn --out %s/m --epochs 1 --log %s/log --patience 5", d, d, d), 0,
                 "%s", tcli_out());
    cr_assert_eq(tcli_semctr("train --data %s/data --model dnn --out %s/m --epochs 3 --log %s/log --patience 5 --resume", d,
                        d, d),
                 0, "%s", tcli_out());
    char path[128], *log;
    size_t n;
    snprintf(path, sizeof path, "%s/log", d);
    cr_assert_eq(sc_read_file(path, &log, &n, NULL), SC_OK);
    /* one line per epoch across both runs: 1 from the first, 2 and 3 from the resumed one */
    cr_assert(strstr(log, "\"epoch\": 1,") && strstr(log, "\"epoch\": 2,") && strstr(log, "\"epoch\": 3,"), "%s", log);
    cr_assert_null(strstr(strstr(log, "\"epoch\": 2,"), "\"epoch\": 1,"), "epoch 1 ran twice:\n%s", log);
    sc_free(log);
    cleanup(d);
}

Test(train_cli, sigterm_leaves_a_loadable_model, .timeout = 300) {
    char d[64], model[128];
    prepare(d);
    snprintf(model, sizeof model, "%s/m", d);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        char data[128];
        snprintf(data, sizeof data, "%s/data", d);
        setenv("SEMCTR_QUIET", "1", 1);
        if (!freopen("/dev/null", "w", stderr)) _exit(126); /* the expected "interrupted" message */
        execl(getenv("SEMCTR_BIN"), "semctr", "train", "--data", data, "--model", "autoint", "--out", model,
              "--epochs", "50", "--patience", "50", "--batch-size", "64", (char *)NULL);
        _exit(127);
    }
    /* wait for the first best epoch to be written, then stop the run mid-epoch */
    /* (generous: an epoch under sanitizers on a busy machine is slow) */
    for (int i = 0; i < 18000 && !sc_file_exists(model); i++) usleep(10000);
    if (!sc_file_exists(model)) { /* never leave the child training after the test */
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        cr_assert_fail("no model file after 180 s");
    }
    usleep(100000);
    kill(pid, SIGTERM);
    int st;
    waitpid(pid, &st, 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "exit status %d", st);
    cr_assert_eq(tcli_semctr("eval --model %s --data %s/data --json", model, d), 0, "%s", tcli_out());
    cr_assert(tcli_json_number(tcli_out(), "auc") > 0.6);
    cleanup(d);
}

Test(train_cli, elec_end_to_end_and_vanilla_serves_without_lm, .timeout = 600) {
    char d[64];
    prepare(d);
    /* short texts (genres, occupation) keep the encoder's work small under sanitizers */
    cr_assert_eq(tcli_semctr("train --method elec --elec-granularity entity --elec-text genres,occupation --data %s/data "
                        "--model deepfm --out %s/e --epochs 2 --patience 5 --adapter-epochs 1 --seed 3 --log %s/log --json",
                        d, d, d),
                 0, "%s", tcli_out());
    const char *test = strstr(tcli_out(), "\"test\"");
    cr_assert(test, "%s", tcli_out());
    cr_assert(tcli_json_number(strstr(test, "\"adapter\""), "auc") > 0.55, "%s", tcli_out());
    cr_assert(tcli_json_number(strstr(test, "\"gain\""), "auc") > 0.65, "%s", tcli_out());
    cr_assert(tcli_json_number(strstr(test, "\"vanilla\""), "auc") > 0.65, "%s", tcli_out());
    /* the vectors are cached; a resumed run continues with the pair's third epoch */
    char cache[128];
    snprintf(cache, sizeof cache, "%s/data/elec-entity-all-MiniLM-L6-v2.vec", d);
    cr_assert(sc_file_exists(cache));
    cr_assert_eq(tcli_semctr("train --method elec --elec-granularity entity --elec-text genres,occupation --data %s/data "
                        "--model deepfm --out %s/e --epochs 3 --patience 5 --adapter-epochs 1 --seed 3 --log %s/log "
                        "--resume",
                        d, d, d),
                 0, "%s", tcli_out());
    char logp[128], *log;
    size_t n;
    snprintf(logp, sizeof logp, "%s/log", d);
    cr_assert_eq(sc_read_file(logp, &log, &n, NULL), SC_OK);
    cr_assert(strstr(log, "\"epoch\": 3,"), "%s", log);
    cr_assert_null(strstr(strstr(log, "\"epoch\": 2,"), "\"epoch\": 1,"), "the pair restarted:\n%s", log);
    sc_free(log);
    cr_assert_eq(tcli_semctr("export --model %s/e --network vanilla --out %s/v", d, d), 0, "%s", tcli_out());
    cr_assert_eq(tcli_semctr("export --model %s/e --network gain --out %s/g", d, d), 1);
    cr_assert(strstr(tcli_out(), "language-model vectors"), "%s", tcli_out());
    /* the exported network holds no adapter and scores with no model reachable */
    char path[128];
    snprintf(path, sizeof path, "%s/v", d);
    sc_container c;
    cr_assert_eq(sc_container_open(&c, path, NULL), SC_OK);
    for (int i = 0; i < c.n; i++) cr_assert_neq(strncmp(c.entries[i].name, "adapter/", 8), 0, "%s", c.entries[i].name);
    sc_container_close(&c);
    cr_assert_eq(tcli_semctr("eval --model %s/v --data %s/data --json", d, d), 0, "%s", tcli_out());
    cr_assert(tcli_json_number(tcli_out(), "auc") > 0.65);
    cleanup(d);
}

Test(train_cli, elec_bad_settings_fail_before_training, .timeout = 300) {
    char d[64], path[160];
    prepare(d);
    cr_assert_eq(tcli_semctr("train --method elec --elec-text title,nosuch --data %s/data --model dnn --out %s/e", d, d), 1);
    cr_assert(strstr(tcli_out(), "'nosuch' is not a text column") && strstr(tcli_out(), "title"), "%s", tcli_out());
    /* a store of other vectors (semctr embed's: normalised sentence embeddings) is refused */
    snprintf(path, sizeof path, "%s/texts.txt", d);
    FILE *f = fopen(path, "w");
    fputs("a\tToy Story\n", f);
    fclose(f);
    cr_assert_eq(tcli_semctr("embed --input %s --out %s/other.vec", path, d), 0, "%s", tcli_out());
    cr_assert_eq(tcli_semctr("train --method elec --elec-cache %s/other.vec --data %s/data --model dnn --out %s/e", d, d, d), 1);
    cr_assert(strstr(tcli_out(), "other.vec") && strstr(tcli_out(), "not normalised"), "%s", tcli_out());
    cr_assert_eq(tcli_semctr("train --method elec --lm %s/nomodel --data %s/data --model dnn --out %s/e", d, d, d), 1);
    cr_assert(strstr(tcli_out(), "nomodel"), "%s", tcli_out());
    snprintf(path, sizeof path, "%s/e", d);
    cr_assert(!sc_file_exists(path), "a failed run left a model file");
    cleanup(d);
}

Test(train_cli, elec_with_a_gguf_decoder_llm, .timeout = 600) {
    char d[64];
    prepare(d);
    /* ELEC is LLM-agnostic: the same run with SmolLM2 (a Llama-family GGUF) as the LLM;
     * user texts only ("Occupation is writer. Gender is M."), a few dozen, to stay quick */
    cr_assert_eq(tcli_semctr("train --method elec --lm %s --elec-granularity entity --elec-text occupation,gender "
                        "--data %s/data --model dnn --out %s/e --epochs 1 --adapter-epochs 1 --json",
                        ggt_model_path(), d, d),
                 0, "%s", tcli_out());
    cr_assert(strstr(tcli_out(), "SmolLM2") && strstr(tcli_out(), "mean last hidden state"), "%s", tcli_out());
    /* the served network (the guard may serve the plain backbone: never worse than it) */
    const char *test = strstr(tcli_out(), "\"test\":{");
    cr_assert(test, "%s", tcli_out());
    cr_assert(tcli_json_number(strstr(test, "\"served\""), "auc") > 0.6, "%s", tcli_out());
    cleanup(d);
}
