/* The semctr command-line tool: one file per subcommand, each exposing
 * `int cmd_<name>(int argc, char **argv)` that returns the process exit code.
 * Only this folder turns a status into an exit code or prints to stdout. */
#ifndef SC_CLI_H
#define SC_CLI_H

#include <stddef.h>

#include "base/error.h"
#include "dist/dist.h"

#define SEMCTR_VERSION "0.1.0"

/* Exit codes: 0 ok, 1 failure reported by the library, 2 bad usage. */
enum { EXIT_USAGE = 2 };

int cmd_init(int argc, char **argv);
int cmd_prepare(int argc, char **argv);
int cmd_gen_criteo(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_extract(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_bench_serve(int argc, char **argv);
int cmd_report(int argc, char **argv);

/* Print "semctr <cmd>: error: <message>" and return exit code 1. */
int cli_fail(const char *cmd, const sc_error *err);

/* The end of a command that ran over MPI ranks (dist from sc_dist_init;
 * NULL: one process): on failure, cli_fail's message prefixed "rank R of N:"
 * when there are several ranks, then the whole job ended (another rank may
 * be waiting for this one in a collective) unless every rank stopped
 * together on an interruption. Finalizes dist. Returns the exit code. */
int cli_dist_finish(const char *cmd, sc_dist *dist, int rc, sc_error *err);

/* Arguments: each subcommand describes its options in a table and calls
 * cli_parse once; checks between options (required, exclusive, ranges other
 * than an integer's) follow in the command, after the parse.
 *
 *     long threads = 4;
 *     const char *model = NULL;
 *     int json = 0;
 *     const cli_opt opts[] = {
 *         CLI_STR("--model", &model),
 *         CLI_INT("--threads", &threads, 1, 256),
 *         CLI_FLAG("--json", &json),
 *     };
 *     int code = cli_parse("eval", "option", USAGE, opts, CLI_N(opts), argc, argv);
 *     if (code != CLI_GO_ON) return code;
 */
typedef enum { CLI_KIND_STR, CLI_KIND_INT, CLI_KIND_FLOAT, CLI_KIND_FLAG, CLI_KIND_LIST } cli_kind;

typedef struct cli_opt {
    const char *name; /* "--model" */
    cli_kind kind;
    void *dst;        /* written when the option is given; untouched otherwise */
    long lo, hi;      /* CLI_INT: the allowed range, inclusive */
} cli_opt;

/* The table's entries. dst's type is checked by the compiler (that is all
 * the ?: does). A value is a pointer into argv. */
#define CLI_OPT_(name, kind, type, dst, lo, hi) {name, kind, (void *)(1 ? (dst) : (type)0), lo, hi}
#define CLI_STR(name, dst) CLI_OPT_(name, CLI_KIND_STR, const char **, dst, 0, 0)
#define CLI_INT(name, dst, lo, hi) CLI_OPT_(name, CLI_KIND_INT, long *, dst, lo, hi) /* cli_int */
#define CLI_FLOAT(name, dst) CLI_OPT_(name, CLI_KIND_FLOAT, double *, dst, 0, 0)     /* cli_float */
#define CLI_FLAG(name, dst) CLI_OPT_(name, CLI_KIND_FLAG, int *, dst, 0, 0)          /* no value; sets 1 */
#define CLI_LIST(name, dst) CLI_OPT_(name, CLI_KIND_LIST, cli_list *, dst, 0, 0)     /* repeatable */
#define CLI_N(opts) ((int)(sizeof(opts) / sizeof *(opts)))

/* The values of repeatable options, in command-line order. Options may share
 * a list: opt[i] names the one that gave val[i]. n counts every value, but
 * only the first CLI_LIST_MAX are kept: a command refuses more than its own
 * limit (below CLI_LIST_MAX) before reading further. */
#define CLI_LIST_MAX 128
typedef struct cli_list {
    int n;
    const char *opt[CLI_LIST_MAX];
    const char *val[CLI_LIST_MAX];
} cli_list;

enum { CLI_GO_ON = -1 };

/* Read argv[1..argc-1] (argv[0] is the subcommand) against opts, in order:
 * `--name value` or `--name=value` (a flag: only `--name`). Returns CLI_GO_ON,
 * or the exit code to return at once:
 *   0           --help or -h: usage printed on stdout;
 *   EXIT_USAGE  an argument not in opts: "semctr CMD: unknown NOUN 'ARG'"
 *               and the usage on stderr (NOUN: "option" or "argument", the
 *               word the command has always used); a missing value:
 *               "semctr: option NAME needs a value"; a bad number: the
 *               message of cli_int / cli_float. */
int cli_parse(const char *cmd, const char *noun, const char *usage, const cli_opt *opts, int n_opts, int argc,
              char **argv);

/* s as an integer in [lo, hi] / as a number into *out; else print
 * "semctr CMD: NAME must be ..., got 'S'" and return -1. */
int cli_int(const char *cmd, const char *name, const char *s, long lo, long hi, long *out);
int cli_float(const char *cmd, const char *name, const char *s, double *out);

/* The index of s among words (NULL-terminated) into *index and 0; -1 after
 * "semctr CMD: NAME must be A, B or C, got 'S'"; 0 and *index untouched when
 * s is NULL (the option was not given). */
int cli_choice(const char *cmd, const char *name, const char *s, const char *const *words, int *index);

/* The sampling options of generate and extract: --temperature in [0, 100]
 * into *temperature and --top-p in (0, 1] into *top_p, each only when given
 * (not NULL). Returns 0, or EXIT_USAGE after the message. */
int cli_sampling(const char *cmd, const char *temperature, const char *top_p, float *temperature_out,
                 float *top_p_out);

/* The default decoder GGUF: $SEMCTR_GGUF, else the cached SmolLM2-135M-Instruct
 * (${SEMCTR_CACHE:-~/.cache/semctr}/models/...). Returns buf or the env value. */
const char *cli_default_gguf(char *buf, size_t cap);

#endif
