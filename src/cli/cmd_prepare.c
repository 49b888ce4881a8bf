/* Placeholder until this subcommand lands; replaced by its real file. */
#include <stdio.h>

#include "cli/cli.h"

int cmd_prepare(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "semctr: 'prepare' is not built yet\n");
    return 1;
}
