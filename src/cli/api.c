/* The public API's whole-command calls (semctr_prepare, semctr_train,
 * semctr_evaluate, semctr_embed; include/semctr.h), used by the Python
 * package (python/). Each one runs the CLI command itself (cmd_prepare,
 * cmd_train, ...) with an argv built from its arguments, so the library and
 * the command line cannot drift apart: the options, their checks, defaults
 * and messages are the command's.
 *
 * The commands report through stdout (eval --json) and stderr (errors,
 * progress). To hand those back as values, a call points file descriptors 1
 * and 2 at temporary files for its duration and restores them after; the
 * captured stderr is then written to the real stderr (the caller still sees
 * the progress log) and, on failure, its error line becomes err->message.
 * File descriptors are per process, so these calls hold one process-wide
 * lock: they run one at a time (semctr_score does not take it). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/util.h"
#include "cli/cli.h"
#include "lm/vecstore.h"
#include "semctr.h"

static pthread_mutex_t cmd_lock = PTHREAD_MUTEX_INITIALIZER;

static int api_fail(semctr_error *err, int code, const char *msg) {
    if (err) {
        err->code = code;
        snprintf(err->message, sizeof err->message, "%s", msg);
    }
    return code;
}

/* A temporary file's descriptor (unlinked at once: nothing is left behind). */
static int temp_fd(void) {
    char path[] = "/tmp/semctr-api-XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) unlink(path);
    return fd;
}

/* The whole content of fd as a NUL-terminated string (sc_free it). */
static char *slurp(int fd) {
    off_t n = lseek(fd, 0, SEEK_END);
    if (n < 0) n = 0;
    char *s = sc_malloc((size_t)n + 1);
    if (!s) return NULL;
    ssize_t got = pread(fd, s, (size_t)n, 0);
    s[got > 0 ? got : 0] = 0;
    return s;
}

/* The message of a failed command from its stderr: the text after
 * "error: " on the line that has it (cli_fail's), else the first line that
 * is not a progress line (a usage error: "semctr eval: --model and --data
 * are required"). */
static void error_from(const char *log, semctr_error *err) {
    const char *e = strstr(log, ": error: ");
    if (e) {
        e += 9;
        size_t n = strcspn(e, "\n");
        char buf[1024];
        snprintf(buf, sizeof buf, "%.*s", (int)(n < sizeof buf - 1 ? n : sizeof buf - 1), e);
        api_fail(err, SEMCTR_EINVAL, buf);
        return;
    }
    for (const char *l = log; *l; l += strcspn(l, "\n") + (l[strcspn(l, "\n")] != 0)) {
        if (!strncmp(l, "semctr ", 7)) {
            size_t n = strcspn(l, "\n");
            char buf[1024];
            snprintf(buf, sizeof buf, "%.*s", (int)(n < sizeof buf - 1 ? n : sizeof buf - 1), l);
            api_fail(err, SEMCTR_EINVAL, buf);
            return;
        }
    }
    api_fail(err, SEMCTR_EINVAL, "the command failed without a message");
}

/* Run cmd(argc, argv) with stdout and stderr captured. *out (when not NULL)
 * gets its stdout. Returns SEMCTR_OK or a negative status with err set. */
static int run_cmd(int (*cmd)(int, char **), int argc, char **argv, char **out, semctr_error *err) {
    if (err) err->code = 0, err->message[0] = 0;
    pthread_mutex_lock(&cmd_lock);
    fflush(stdout);
    fflush(stderr);
    int fo = temp_fd(), fe = temp_fd(), so = dup(1), se = dup(2);
    if (fo < 0 || fe < 0 || so < 0 || se < 0) {
        if (fo >= 0) close(fo);
        if (fe >= 0) close(fe);
        if (so >= 0) close(so);
        if (se >= 0) close(se);
        pthread_mutex_unlock(&cmd_lock);
        return api_fail(err, SEMCTR_EIO, "cannot create a temporary file in /tmp to capture the command's output");
    }
    dup2(fo, 1);
    dup2(fe, 2);
    /* Commands make SIGINT/SIGTERM set a flag that stops their loops
     * (sc_install_signal_handlers): so Ctrl-C stops this call with an
     * "interrupted" error; the caller's handlers (Python's) come back after,
     * and the flag is cleared so the next call is not stopped at once. */
    struct sigaction old_int, old_term;
    sigaction(SIGINT, NULL, &old_int);
    sigaction(SIGTERM, NULL, &old_term);
    sc_clear_interrupted();
    int code = cmd(argc, argv);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sc_clear_interrupted();
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    char *o = slurp(fo), *e = slurp(fe);
    close(fo);
    close(fe);
    pthread_mutex_unlock(&cmd_lock);
    int rc = SEMCTR_OK;
    if (!o || !e) rc = api_fail(err, SEMCTR_ENOMEM, "out of memory reading the command's output");
    else {
        fputs(e, stderr); /* the progress log, as the command would have shown it */
        if (code) {
            error_from(e, err);
            rc = err ? err->code : SEMCTR_EINVAL;
        }
    }
    if (!rc && out) *out = o;
    else sc_free(o);
    sc_free(e);
    return rc;
}

/* argv = {name, fixed..., "--key", value, ...}: keys without "--" get it;
 * a NULL value is a flag. */
static char **build_argv(const char *name, int n_fixed, const char *const *fixed, int n_opts,
                         const char *const *keys, const char *const *values, int *argc, semctr_error *err) {
    char **argv = sc_calloc((size_t)(1 + n_fixed + 2 * n_opts + 1), sizeof *argv);
    if (!argv) {
        api_fail(err, SEMCTR_ENOMEM, "out of memory");
        return NULL;
    }
    int k = 0;
    argv[k++] = sc_strdup(name);
    for (int i = 0; i < n_fixed; i++) argv[k++] = sc_strdup(fixed[i]);
    for (int i = 0; i < n_opts; i++) {
        if (!keys[i] || !keys[i][0]) {
            api_fail(err, SEMCTR_EINVAL, "an option has an empty name");
            goto fail;
        }
        size_t n = strlen(keys[i]) + 3;
        char *o = sc_malloc(n);
        if (o) snprintf(o, n, "%s%s", strncmp(keys[i], "--", 2) ? "--" : "", keys[i]);
        argv[k++] = o;
        if (values[i]) argv[k++] = sc_strdup(values[i]);
    }
    for (int i = 0; i < k; i++)
        if (!argv[i]) {
            api_fail(err, SEMCTR_ENOMEM, "out of memory");
            goto fail;
        }
    *argc = k;
    return argv;
fail:
    for (int i = 0; i < k; i++) sc_free(argv[i]);
    sc_free(argv);
    return NULL;
}

static void free_argv(char **argv, int argc) {
    for (int i = 0; i < argc; i++) sc_free(argv[i]);
    sc_free(argv);
}

static int run_opts(int (*cmd)(int, char **), const char *name, int n_fixed, const char *const *fixed, int n_opts,
                    const char *const *keys, const char *const *values, char **out, semctr_error *err) {
    if (n_opts < 0 || (n_opts && (!keys || !values)))
        return api_fail(err, SEMCTR_EINVAL, "options: keys and values are required when n_opts > 0");
    int argc = 0;
    char **argv = build_argv(name, n_fixed, fixed, n_opts, keys, values, &argc, err);
    if (!argv) return err ? err->code : SEMCTR_ENOMEM;
    int rc = run_cmd(cmd, argc, argv, out, err);
    free_argv(argv, argc);
    return rc;
}

int semctr_prepare(const char *config, const char *out, semctr_error *err) {
    if (!config || !out) return api_fail(err, SEMCTR_EINVAL, "semctr_prepare: config and out are required");
    const char *fixed[] = {"--config", config, "--out", out};
    return run_opts(cmd_prepare, "prepare", 4, fixed, 0, NULL, NULL, NULL, err);
}

int semctr_train(int n_opts, const char *const *keys, const char *const *values, semctr_error *err) {
    return run_opts(cmd_train, "train", 0, NULL, n_opts, keys, values, NULL, err);
}

int semctr_evaluate(int n_opts, const char *const *keys, const char *const *values, char **json, semctr_error *err) {
    if (!json) return api_fail(err, SEMCTR_EINVAL, "semctr_evaluate: json is required");
    *json = NULL;
    const char *fixed[] = {"--json"};
    return run_opts(cmd_eval, "eval", 1, fixed, n_opts, keys, values, json, err);
}

int semctr_embed(int n, const char *const *texts, const char *model_dir, float **vecs, int *dim, semctr_error *err) {
    if (n <= 0 || !texts || !vecs || !dim) return api_fail(err, SEMCTR_EINVAL, "semctr_embed: no texts");
    *vecs = NULL;
    *dim = 0;
    /* `embed --input` reads "id<TAB>text" lines; a newline inside a text
     * would end its line, so it is written as a space (the tokenizer splits
     * on both alike: the same tokens). */
    char dir[] = "/tmp/semctr-embed-XXXXXX";
    if (!mkdtemp(dir)) return api_fail(err, SEMCTR_EIO, "cannot create a temporary folder in /tmp");
    char in[64], store[64];
    snprintf(in, sizeof in, "%s/texts.tsv", dir);
    snprintf(store, sizeof store, "%s/vectors.store", dir);
    FILE *f = fopen(in, "w");
    int rc = f ? SEMCTR_OK : api_fail(err, SEMCTR_EIO, "cannot write a temporary file in /tmp");
    for (int i = 0; i < n && !rc; i++) {
        if (!texts[i]) {
            char m[64];
            snprintf(m, sizeof m, "semctr_embed: text %d is NULL", i);
            rc = api_fail(err, SEMCTR_EINVAL, m);
            break;
        }
        fprintf(f, "%d\t", i);
        for (const char *c = texts[i]; *c; c++) fputc(*c == '\n' || *c == '\r' ? ' ' : *c, f);
        fputc('\n', f);
    }
    if (f && fclose(f) && !rc) rc = api_fail(err, SEMCTR_EIO, "cannot write a temporary file in /tmp");
    if (!rc) {
        const char *fixed[] = {"--input", in, "--out", store, "--model", model_dir};
        rc = run_opts(cmd_embed, "embed", model_dir ? 6 : 4, fixed, 0, NULL, NULL, NULL, err);
    }
    if (!rc) {
        sc_vecstore *s = NULL;
        sc_error e = {0};
        if (sc_vecstore_open(&s, store, 0, &e)) rc = api_fail(err, e.code, e.msg);
        else {
            int d = sc_vecstore_dim(s);
            float *v = sc_malloc((size_t)n * (size_t)d * sizeof *v); /* the caller frees it (semctr_buffer_free) */
            if (!v) rc = api_fail(err, SEMCTR_ENOMEM, "out of memory");
            for (int i = 0; i < n && !rc; i++) {
                char id[24];
                snprintf(id, sizeof id, "%d", i);
                const float *x = sc_vecstore_get(s, id);
                if (!x) rc = api_fail(err, SEMCTR_EINTERNAL, "semctr_embed: a text is missing from the store");
                else memcpy(v + (size_t)i * d, x, (size_t)d * sizeof *v);
            }
            if (rc) sc_free(v);
            else *vecs = v, *dim = d;
            sc_vecstore_close(s);
        }
    }
    unlink(in);
    unlink(store);
    rmdir(dir);
    return rc;
}

void semctr_buffer_free(void *p) { sc_free(p); }
