/* Placeholder until this subcommand lands; replaced by its real file. */
#include <stdio.h>

#include "cli/cli.h"

int cmd_gen_criteo(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "semctr: 'gen_criteo' is not built yet\n");
    return 1;
}
