/* The semctr command-line tool: one file per subcommand, each exposing
 * `int cmd_<name>(int argc, char **argv)` that returns the process exit code.
 * Only this folder turns a status into an exit code or prints to stdout. */
#ifndef SC_CLI_H
#define SC_CLI_H

#include <stddef.h>

#include "base/error.h"

#define SEMCTR_VERSION "0.1.0"

/* Exit codes: 0 ok, 1 failure reported by the library, 2 bad usage. */
enum { EXIT_USAGE = 2 };

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

/* Print "semctr <cmd>: error: <message>" and return exit code 1. */
int cli_fail(const char *cmd, const sc_error *err);

/* Tiny argument helpers: `--name value` and `--name=value` forms. */
typedef struct cli_args {
    int argc;
    char **argv;
    int i; /* current index */
} cli_args;
/* If argv[i] is --name, take its value into *val (advancing i) and return 1;
 * return -1 when the value is missing; 0 when argv[i] is another flag. */
int cli_take(cli_args *a, const char *name, const char **val);
int cli_flag(cli_args *a, const char *name); /* boolean flag */
int cli_int(const char *cmd, const char *name, const char *s, long lo, long hi, long *out);
int cli_float(const char *cmd, const char *name, const char *s, double *out);

/* The default decoder GGUF: $SEMCTR_GGUF, else the cached SmolLM2-135M-Instruct
 * (${SEMCTR_CACHE:-~/.cache/semctr}/models/...). Returns buf or the env value. */
const char *cli_default_gguf(char *buf, size_t cap);

#endif
