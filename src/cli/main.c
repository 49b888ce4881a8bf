#include <stdio.h>
#include <string.h>
#include <stdlib.h>

#include "base/util.h"
#include "cli/cli.h"

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} command;

static const command commands[] = {
    {"init", cmd_init, "draft a commented dataset config from the files (for prepare)"},
    {"prepare", cmd_prepare, "turn a click log into a binary dataset (config: YAML)"},
    {"train", cmd_train, "train a CTR model (backbones; --method elec | msd for ELEC, MSD)"},
    {"eval", cmd_eval, "AUC, gAUC, logloss, RelaImpr of a model on a split"},
    {"report", cmd_report, "an HTML page comparing models: curves, calibration, slices, training"},
    {"predict", cmd_predict, "score a CSV of raw rows, write scores"},
    {"export", cmd_export, "write the servable part of a model (ELEC: --network vanilla)"},
    {"serve", cmd_serve, "HTTP scoring server (TensorFlow Serving REST shape), hot reload, metrics"},
    {"bench-serve", cmd_bench_serve, "in-process scoring throughput and latency (bench/bench_serve.py)"},
    {"embed", cmd_embed, "encode texts with a pretrained language model into a vector store"},
    {"generate", cmd_generate, "text generation with a GGUF decoder (chat template, sampling, stop strings)"},
    {"extract", cmd_extract, "LLM knowledge extraction per item / user (MSD), cached and resumable"},
    {"gen-criteo", cmd_gen_criteo, "write Criteo-shaped synthetic data of any size"},
};

static void usage(FILE *out) {
    fprintf(out, "semctr %s — LLM-infused CTR prediction\n\nusage: semctr <command> [options]\n\ncommands:\n",
            SEMCTR_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(out, "  %-11s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "  %-11s %s\n", "help", "this text; `semctr <command> --help` for a command");
    fprintf(out, "\nDocumentation: README.md and docs/.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        if (argc > 2) {
            for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
                if (!strcmp(argv[2], commands[i].name)) {
                    char *sub[] = {argv[2], "--help", NULL};
                    return commands[i].fn(2, sub);
                }
        }
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("semctr %s\n", SEMCTR_VERSION);
        return 0;
    }
    const char *q = getenv("SEMCTR_QUIET");
    if (q && *q && strcmp(q, "0")) sc_log_level = SC_LOG_QUIET;
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(cmd, commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "semctr: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return EXIT_USAGE;
}
