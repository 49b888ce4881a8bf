/* libFuzzer: the split file reader (sc_dataset_open) on any bytes. The
 * harness fixes up what would stop most inputs at the door — the checksum
 * (recomputed as data/dataset.h defines it, when the column records lie
 * inside the file) and the folder's meta.json (listing the file with the
 * checksum its header holds) — so that the layout, field and id checks
 * behind them are reached. Every open either fails with a message or gives
 * ids that index their vocabulary. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "data/dataset.h"

static uint64_t rd64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* Set the checksum field when the header's column records are readable. */
static void fix_checksum(uint8_t *d, size_t n) {
    if (n < 64) return;
    uint32_t F, T;
    memcpy(&F, d + 12, 4);
    memcpy(&T, d + 36, 4);
    if (F > 64 || T > 64) return;
    size_t H = 64 + (size_t)F * 88 + (size_t)T * 64 + (2 + (size_t)F + T) * 16;
    if (H > n) return;
    int64_t N = (int64_t)rd64(d + 16);
    uint8_t *buf = malloc(H + 8 * (2 + F + T));
    memcpy(buf, d, H);
    memset(buf + 40, 0, 8);
    const uint8_t *cols = d + 64 + (size_t)F * 88 + (size_t)T * 64;
    for (uint32_t c = 0; c < 2 + F + T; c++) {
        uint64_t W = 1;
        if (c >= 2 && c < 2 + F) {
            int32_t w;
            memcpy(&w, d + 64 + (size_t)(c - 2) * 88 + 68, 4);
            W = w > 0 ? (uint64_t)w : 0;
        }
        uint64_t off = rd64(cols + 16 * c), bytes = rd64(cols + 16 * c + 8) ? (uint64_t)N * W * 4 : 0;
        if (N < 0 || (W && (uint64_t)N > UINT64_MAX / 4 / W) || off > n || bytes > n - off) {
            free(buf);
            return; /* the reader refuses this layout before it looks at the checksum */
        }
        uint64_t h = XXH3_64bits(d + off, bytes);
        memcpy(buf + H + 8 * c, &h, 8);
    }
    uint64_t sum = XXH3_64bits(buf, H + 8 * (2 + F + T));
    memcpy(d + 40, &sum, 8);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char dir[64], path[96];
    snprintf(dir, sizeof dir, "/tmp/fuzz_scd_%d", (int)getpid());
    mkdir(dir, 0755);
    uint8_t *d = malloc(size + 1);
    memcpy(d, data, size);
    fix_checksum(d, size);
    snprintf(path, sizeof path, "%s/train.scd", dir);
    FILE *fp = fopen(path, "wb");
    fwrite(d, 1, size, fp);
    fclose(fp);
    snprintf(path, sizeof path, "%s/meta.json", dir);
    fp = fopen(path, "w");
    fprintf(fp, "{\"files\": {\"train.scd\": {\"checksum\": \"%016llx\"}}}",
            (unsigned long long)(size >= 48 ? rd64(d + 40) : 0));
    fclose(fp);
    free(d);
    snprintf(path, sizeof path, "%s/train.scd", dir);
    sc_dataset ds;
    sc_error err;
    if (sc_dataset_open(&ds, path, &err) == SC_OK) {
        for (int f = 0; f < ds.n_fields; f++)
            for (int64_t i = 0; ds.ids[f] && i < ds.n_rows * ds.fields[f].width; i++)
                if (ds.ids[f][i] < 0 || ds.ids[f][i] >= ds.fields[f].vocab_size) abort();
        sc_dataset_close(&ds);
    }
    return 0;
}
