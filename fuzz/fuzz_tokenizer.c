/* libFuzzer harness: the WordPiece tokenizer on arbitrary bytes (invalid
 * UTF-8, control characters, special tokens, long words), with a small
 * in-memory vocabulary so no model file is needed. Checks the invariants:
 * [CLS] first, [SEP] last, every id in the vocabulary, truncation respected.
 * `make fuzz && build-fuzz/fuzz_tokenizer -max_total_time=60` */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text/wordpiece.h"

static sc_wordpiece *wp;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!wp) {
        static const char vocab[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nb\nab\n##a\n##b\n##ab\n!\n,\n.\n"
                                    "the\n##s\ncaf\n##e\n\xe4\xb8\xad\n\xc3\xa9\nhello\n##llo\nhe\n";
        sc_wordpiece_opts o = {1, -1, 1, 1, 20};
        if (sc_wordpiece_from_vocab_buf(&wp, vocab, sizeof vocab - 1, "fuzz", &o, NULL) != SC_OK) abort();
    }
    int max_len = size ? 2 + data[0] % 40 : 0;
    sc_tokens t = {0};
    sc_error err;
    for (int pass = 0; pass < 2; pass++) {
        int lim = pass ? max_len : 0;
        if (sc_wordpiece_encode(wp, (const char *)data, size, lim, &t, &err) != SC_OK) abort();
        if (t.n < 2 || t.ids[0] != 2 || t.ids[t.n - 1] != 3) abort();
        if (lim && t.n > lim) abort();
        for (int i = 0; i < t.n; i++)
            if (!sc_wordpiece_token(wp, t.ids[i])) abort();
    }
    sc_tokens_free(&t);
    return 0;
}
