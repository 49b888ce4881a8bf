/* libFuzzer: the row splitter, UTF-8 check, Latin-1 conversion and number
 * parsing. First byte picks the delimiter and quoting. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/csv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static const char *const delims[] = {",", "\t", "|", "::", ";;;"};
    const char *d = delims[data[0] % 5];
    char quote = (data[0] & 0x80) ? '"' : 0;
    size_t n = size - 1;
    char *line = malloc(n + 1);
    memcpy(line, data + 1, n);
    line[n] = 0;
    sc_cell cells[16];
    int k = sc_csv_split(line, n, d, strlen(d), quote, cells, 16);
    for (int i = 0; i < k && i < 16; i++) {
        /* every cell lies inside the line */
        if (cells[i].p < line || cells[i].p + cells[i].len > line + n) abort();
        double x;
        (void)sc_parse_double(cells[i].p, cells[i].len, &x);
    }
    /* a cell's values split at '|' and joined by ", " fit the capacity the function states */
    const char *seps[] = {"|", "::", ";"}, *joiners[] = {", ", "", " / "};
    const char *sep = seps[data[0] % 3], *joiner = joiners[(data[0] >> 2) % 3];
    size_t cap = sc_split_join_cap(n, sep, joiner);
    char *joined = malloc(cap);
    if (sc_split_join((const char *)data + 1, n, sep, joiner, joined) > cap) abort();
    free(joined);
    size_t bad;
    (void)sc_utf8_valid((const char *)data + 1, n, &bad);
    char *u = malloc(2 * n + 1);
    size_t m = sc_latin1_to_utf8((const char *)data + 1, n, u);
    if (!sc_utf8_valid(u, m, NULL)) abort(); /* Latin-1 always converts to valid UTF-8 */
    free(u);
    free(line);
    return 0;
}
