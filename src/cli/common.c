#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int cli_fail(const char *cmd, const sc_error *err) {
    fprintf(stderr, "semctr %s: error: %s\n", cmd, err && err->msg[0] ? err->msg : sc_strerror(err ? err->code : -1));
    return 1;
}

int cli_dist_finish(const char *cmd, sc_dist *dist, int rc, sc_error *err) {
    int ranks = sc_dist_size(dist), code = 0;
    if (rc) {
        if (ranks > 1) sc_fail_prefix(err, "rank %d of %d: ", sc_dist_rank(dist), ranks);
        code = cli_fail(cmd, err);
        if (err->code != SC_EINTERRUPTED) sc_dist_abort(dist, code);
    }
    sc_dist_finalize(dist);
    return code;
}

/* The entry of opts that arg names: `--name`, or `--name=...` for an option with a value. */
static const cli_opt *find_opt(const cli_opt *opts, int n_opts, const char *arg) {
    for (int k = 0; k < n_opts; k++) {
        size_t n = strlen(opts[k].name);
        if (strncmp(arg, opts[k].name, n)) continue;
        if (arg[n] == '\0' || (arg[n] == '=' && opts[k].kind != CLI_KIND_FLAG)) return &opts[k];
    }
    return NULL;
}

int cli_parse(const char *cmd, const char *noun, const char *usage, const cli_opt *opts, int n_opts, int argc,
              char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            fputs(usage, stdout);
            return 0;
        }
        const cli_opt *o = find_opt(opts, n_opts, arg);
        if (!o) {
            fprintf(stderr, "semctr %s: unknown %s '%s'\n%s", cmd, noun, arg, usage);
            return EXIT_USAGE;
        }
        if (o->kind == CLI_KIND_FLAG) {
            *(int *)o->dst = 1;
            continue;
        }
        size_t n = strlen(o->name);
        const char *v;
        if (arg[n] == '=') v = arg + n + 1;
        else if (i + 1 < argc) v = argv[++i];
        else {
            fprintf(stderr, "semctr: option %s needs a value\n", o->name);
            return EXIT_USAGE;
        }
        switch (o->kind) {
        case CLI_KIND_STR: *(const char **)o->dst = v; break;
        case CLI_KIND_INT:
            if (cli_int(cmd, o->name, v, o->lo, o->hi, o->dst)) return EXIT_USAGE;
            break;
        case CLI_KIND_FLOAT:
            if (cli_float(cmd, o->name, v, o->dst)) return EXIT_USAGE;
            break;
        case CLI_KIND_LIST: {
            cli_list *l = o->dst;
            if (l->n < CLI_LIST_MAX) {
                l->opt[l->n] = o->name;
                l->val[l->n] = v;
            }
            l->n++;
            break;
        }
        case CLI_KIND_FLAG: break;
        }
    }
    return CLI_GO_ON;
}

int cli_int(const char *cmd, const char *name, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "semctr %s: %s must be an integer in [%ld, %ld], got '%s'\n", cmd, name, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_float(const char *cmd, const char *name, const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end) {
        fprintf(stderr, "semctr %s: %s must be a number, got '%s'\n", cmd, name, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_choice(const char *cmd, const char *name, const char *s, const char *const *words, int *index) {
    if (!s) return 0;
    for (int k = 0; words[k]; k++)
        if (!strcmp(s, words[k])) {
            *index = k;
            return 0;
        }
    fprintf(stderr, "semctr %s: %s must be ", cmd, name);
    for (int k = 0; words[k]; k++) fprintf(stderr, "%s%s", k == 0 ? "" : words[k + 1] ? ", " : " or ", words[k]);
    fprintf(stderr, ", got '%s'\n", s);
    return -1;
}

int cli_sampling(const char *cmd, const char *temperature, const char *top_p, float *temperature_out,
                 float *top_p_out) {
    double d;
    if (temperature) {
        if (cli_float(cmd, "--temperature", temperature, &d)) return EXIT_USAGE;
        if (!(d >= 0 && d <= 100)) {
            fprintf(stderr, "semctr %s: --temperature must be in [0, 100], got '%s'\n", cmd, temperature);
            return EXIT_USAGE;
        }
        *temperature_out = (float)d;
    }
    if (top_p) {
        if (cli_float(cmd, "--top-p", top_p, &d)) return EXIT_USAGE;
        if (!(d > 0 && d <= 1)) {
            fprintf(stderr, "semctr %s: --top-p must be in (0, 1], got '%s'\n", cmd, top_p);
            return EXIT_USAGE;
        }
        *top_p_out = (float)d;
    }
    return 0;
}
