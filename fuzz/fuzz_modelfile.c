/* libFuzzer harness for model files (src/train/container.c, modelfile.c and
 * the schema they carry, through sc_scorer_load, as `serve` loads one).
 * The checksum would turn nearly every mutation into "checksum mismatch",
 * so the input is the file's parts and the harness assembles the file and
 * fixes the checksum up:
 *   input: [flags u8][H u16 little-endian][H bytes of header JSON][data section]
 *   flags bit 0: write a version 1 file (checksum of the data only), else 2.
 * An accepted file must score a row of raw cells to a finite probability, or
 * refuse it with a message; never a crash, a leak or a read outside the file.
 * Seeds: fuzz/corpus/modelfile (tiny models of each backbone family in this
 * form; make them with fuzz/modelfile_seed.py).
 * Build: make fuzz; run on a copy of the seeds (libFuzzer adds to its corpus):
 *   cp -r fuzz/corpus/modelfile /tmp/mf && build-fuzz/fuzz_modelfile -max_total_time=120 -max_len=20000 /tmp/mf */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

#include "base/util.h"
#include "serve/scorer.h"

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size) {
    if (size < 3) return 0;
    int v1 = in[0] & 1;
    size_t h = (size_t)in[1] | (size_t)in[2] << 8;
    if (h > size - 3) h = size - 3;
    const uint8_t *hdr = in + 3, *data = hdr + h;
    size_t dlen = size - 3 - h, start = (24 + h + 63) / 64 * 64, total = start + dlen + 16;
    uint8_t *f = calloc(1, total);
    if (!f) return 0;
    uint32_t ver[2] = {v1 ? 1 : 2, 0};
    uint64_t hlen = h;
    memcpy(f, "SCTRMODL", 8);
    memcpy(f + 8, ver, 8);
    memcpy(f + 16, &hlen, 8);
    memcpy(f + 24, hdr, h);
    memcpy(f + start, data, dlen);
    uint64_t sum = v1 ? XXH3_64bits(f + start, dlen) : XXH3_64bits(f, total - 16);
    memcpy(f + total - 16, &sum, 8);
    memcpy(f + total - 8, "SCTREND", 8);
    /* the loader mmaps a path: a memory file, exactly the bytes */
    int fd = memfd_create("model", 0);
    if (fd < 0 || write(fd, f, total) != (ssize_t)total) abort();
    free(f);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    sc_log_level = SC_LOG_QUIET;
    sc_scorer *s;
    sc_scorer_options o = {0};
    o.max_contexts = 1;
    o.threads_per_call = 1;
    sc_error err = {0};
    if (sc_scorer_load(&s, path, &o, &err) == SC_OK) {
        int nc;
        const char *const *cols = sc_scorer_input_columns(s, &nc);
        if (nc > 8) nc = 8;
        const char *cells[2 * 8]; /* (2, nc) */
        for (int r = 0; r < 2; r++)
            for (int c = 0; c < nc; c++) cells[r * nc + c] = r ? "1" : "u1";
        float p[2];
        int bad;
        int rc = sc_scorer_score(s, 2, nc, cols, cells, p, &bad, &err);
        if (rc == SC_OK && (!isfinite(p[0]) || !isfinite(p[1]))) abort();
        if (rc != SC_OK && !err.msg[0]) abort();
        sc_scorer_free(s);
    } else if (!err.msg[0]) {
        abort();
    }
    close(fd);
    return 0;
}
