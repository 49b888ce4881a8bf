/* libFuzzer: `semctr init` on any bytes as the input file — the sniffer
 * (delimiter, quoting, header, encoding, column statistics) and the drafter.
 * Whatever the bytes, a draft that comes out must parse as a dataset config
 * (cmd_init refuses to write one that does not, but that is a bug). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "data/config.h"
#include "data/draft.h"
#include "data/sniff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* the sniffer alone, from memory */
    sc_sniff s;
    sc_error err;
    if (sc_sniff_buffer(&s, (const char *)data, size, "fuzz.csv", 1000, &err) == SC_OK) sc_sniff_free(&s);
    /* the whole draft, from a file (joins need files) */
    char path[64];
    snprintf(path, sizeof path, "/tmp/fuzz_init_%d.csv", (int)getpid());
    FILE *fp = fopen(path, "wb");
    if (!fp) return 0;
    fwrite(data, 1, size, fp);
    fclose(fp);
    sc_draft_opts o = {.input = path, .config_path = "/tmp/fuzz_init.yaml", .max_rows = 1000};
    char *yaml = NULL;
    if (sc_draft_config(&o, &yaml, &err) == SC_OK) {
        sc_dcfg *cfg = NULL;
        if (sc_dcfg_parse(&cfg, yaml, strlen(yaml), "draft.yaml", "/tmp", &err) != SC_OK) {
            fprintf(stderr, "a draft that does not parse: %s\n%s\n", err.msg, yaml);
            abort();
        }
        sc_dcfg_free(cfg);
        sc_free(yaml);
    }
    unlink(path);
    return 0;
}
