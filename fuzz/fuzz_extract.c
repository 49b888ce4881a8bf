/* libFuzzer: the text parsers of MSD's knowledge extraction — an LLM answer
 * parsed into "Field: value" lines, and the extraction TSV that training
 * reads back (DIR/<entity>.tsv, escapes and all) — and chat-template
 * recognition. Input: one selector byte, then the text. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "text/chat.h"
#include "methods/msd/extract.h"
#include "methods/msd/msd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    char *s = malloc(size);
    memcpy(s, data + 1, size - 1);
    s[size - 1] = 0;
    sc_error err;
    switch (data[0] % 3) {
    case 0: {
        const char *fields[] = {"Genre", "Era", "Tone", "Audience", "Traits"};
        char *out = NULL;
        if (sc_extract_parse(s, fields, 5, data[0] & 4, &out) >= 0) sc_free(out);
        break;
    }
    case 1: {
        char path[] = "/tmp/fuzz_extract_XXXXXX";
        int fd = mkstemp(path);
        if (fd < 0) break;
        FILE *f = fdopen(fd, "wb");
        fwrite(data + 1, 1, size - 1, f);
        fclose(f);
        sc_msd_tsv t;
        if (sc_msd_tsv_read(path, &t, &err) == SC_OK) sc_msd_tsv_free(&t);
        unlink(path);
        break;
    }
    default: {
        int family;
        char *out = NULL;
        if (sc_chat_family(s, &family, &err) == SC_OK && sc_chat_format(s, "sys", "user", &out, &err) == SC_OK)
            sc_free(out);
        break;
    }
    }
    free(s);
    return 0;
}
