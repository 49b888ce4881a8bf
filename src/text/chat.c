/* Chat templates by family; see chat.h. */
#include "text/chat.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/util.h"
#include "lm/gguf.h"

int sc_chat_family(const char *tmpl, int *family, sc_error *err) {
    if (!tmpl) return sc_fail(err, SC_ENOTFOUND, "the model has no chat template; use --raw to send the prompt as is");
    if (strstr(tmpl, "<|im_start|>")) *family = SC_CHAT_CHATML;
    else if (strstr(tmpl, "<start_of_turn>")) *family = SC_CHAT_GEMMA;
    else if (strstr(tmpl, "<|start_header_id|>")) *family = SC_CHAT_LLAMA3;
    else
        return sc_fail(err, SC_ENOTFOUND,
                       "unknown chat template family (known: ChatML <|im_start|>, Gemma <start_of_turn>, Llama 3 "
                       "<|start_header_id|>); template begins '%.80s'; use --raw and write the prompt format yourself",
                       tmpl);
    return SC_OK;
}

const char *sc_chat_family_name(int family) {
    switch (family) {
    case SC_CHAT_CHATML: return "chatml";
    case SC_CHAT_GEMMA: return "gemma";
    case SC_CHAT_LLAMA3: return "llama3";
    default: return "unknown";
    }
}


/* Jinja's `| trim`: strip leading and trailing whitespace. */
static void sb_trimmed(sc_strbuf *b, const char *s) {
    size_t n = strlen(s);
    while (n && isspace((unsigned char)*s)) s++, n--;
    while (n && isspace((unsigned char)s[n - 1])) n--;
    sc_strbuf_add(b, s, n);
}

/* The literal default system prompt of a ChatML template, written as
 * '<|im_start|>system\n' + TEXT + '<|im_end|>' inside one Jinja string
 * (SmolLM2, Qwen 2.5), with "\n" escapes undone; "" when there is none. */
static void chatml_default_system(const char *tmpl, sc_strbuf *out) {
    static const char marker[] = "<|im_start|>system";
    for (const char *p = strstr(tmpl, marker); p; p = strstr(p + 1, marker)) {
        const char *q = p + sizeof marker - 1;
        if (*q == '\n') q++;
        else if (q[0] == '\\' && q[1] == 'n') q += 2;
        else continue;
        const char *e = strstr(q, "<|im_end|>");
        if (!e || e == q) continue;
        /* a literal: no quote, concatenation or Jinja inside */
        if (memchr(q, '\'', (size_t)(e - q)) || memchr(q, '"', (size_t)(e - q)) || memchr(q, '{', (size_t)(e - q)) ||
            memchr(q, '+', (size_t)(e - q)))
            continue;
        for (const char *c = q; c < e; c++) {
            if (c[0] == '\\' && c + 1 < e && c[1] == 'n') {
                sc_strbuf_add(out, "\n", 1);
                c++;
            } else {
                sc_strbuf_add(out, c, 1);
            }
        }
        return;
    }
}

int sc_chat_format(const char *tmpl, const char *system, const char *user, char **out, sc_error *err) {
    *out = NULL;
    int fam;
    int rc = sc_chat_family(tmpl, &fam, err);
    if (rc != SC_OK) return rc;
    int has_sys = system && system[0];
    int bos = strstr(tmpl, "bos_token") != NULL;
    sc_strbuf b = {0};
    switch (fam) {
    case SC_CHAT_CHATML: {
        sc_strbuf def = {0};
        if (!has_sys) chatml_default_system(tmpl, &def);
        if (has_sys || def.len) {
            sc_strbuf_str(&b, "<|im_start|>system\n");
            sc_strbuf_str(&b, has_sys ? system : def.s);
            sc_strbuf_str(&b, "<|im_end|>\n");
        }
        sc_free(def.s);
        sc_strbuf_str(&b, "<|im_start|>user\n");
        sc_strbuf_str(&b, user);
        sc_strbuf_str(&b, "<|im_end|>\n<|im_start|>assistant\n");
        break;
    }
    case SC_CHAT_GEMMA:
        if (bos) sc_strbuf_str(&b, "<bos>");
        sc_strbuf_str(&b, "<start_of_turn>user\n");
        if (has_sys) {
            sc_strbuf_str(&b, system);
            sc_strbuf_str(&b, "\n\n");
        }
        sb_trimmed(&b, user);
        sc_strbuf_str(&b, "<end_of_turn>\n<start_of_turn>model\n");
        break;
    case SC_CHAT_LLAMA3:
        if (bos) sc_strbuf_str(&b, "<|begin_of_text|>");
        if (has_sys) {
            sc_strbuf_str(&b, "<|start_header_id|>system<|end_header_id|>\n\n");
            sb_trimmed(&b, system);
            sc_strbuf_str(&b, "<|eot_id|>");
        }
        sc_strbuf_str(&b, "<|start_header_id|>user<|end_header_id|>\n\n");
        sb_trimmed(&b, user);
        sc_strbuf_str(&b, "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
        break;
    }
    if (b.oom || !b.s) {
        sc_free(b.s);
        return sc_fail(err, SC_ENOMEM, "out of memory");
    }
    *out = b.s;
    return SC_OK;
}

int sc_chat_template_from_gguf(const char *path, char **out, sc_error *err) {
    *out = NULL;
    sc_gguf g;
    int rc = sc_gguf_open(&g, path, err);
    if (rc != SC_OK) return rc;
    if (sc_gguf_find(&g, "tokenizer.chat_template")) rc = sc_gguf_get_str(&g, "tokenizer.chat_template", out, err);
    sc_gguf_close(&g);
    return rc;
}
