/* libFuzzer: the YAML dataset config loader, from a buffer. */
#include <stdint.h>
#include <stdlib.h>

#include "data/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    setenv("SEMCTR_DATA", "/nonexistent", 0);
    sc_dcfg *cfg = NULL;
    sc_error err;
    if (sc_dcfg_parse(&cfg, (const char *)data, size, "fuzz.yaml", "/base", &err) == SC_OK) sc_dcfg_free(cfg);
    return 0;
}
