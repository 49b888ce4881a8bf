/* Text templates; see template.h. */
#include "text/template.h"

#include <string.h>

#include "base/alloc.h"

typedef struct sbuf {
    char *p;
    size_t n, cap;
} sbuf;

static int put(sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = sc_realloc(b->p, cap);
        if (!p) return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return 0;
}

/* One pass for both check (lookup NULL) and render. */
static int run(const char *t, sc_template_lookup lookup, void *ctx, sbuf *b, sc_error *err) {
    size_t i = 0, n = strlen(t);
    while (i < n) {
        if (t[i] == '{' && i + 1 < n && t[i + 1] == '{') {
            if (b && put(b, "{", 1)) return sc_fail(err, SC_ENOMEM, "out of memory");
            i += 2;
        } else if (t[i] == '}' && i + 1 < n && t[i + 1] == '}') {
            if (b && put(b, "}", 1)) return sc_fail(err, SC_ENOMEM, "out of memory");
            i += 2;
        } else if (t[i] == '}') {
            return sc_fail(err, SC_EINVAL, "template \"%s\": unmatched '}' at byte %zu (write '}}' for a brace)", t, i);
        } else if (t[i] == '{') {
            const char *e = memchr(t + i + 1, '}', n - i - 1);
            const char *o = memchr(t + i + 1, '{', n - i - 1);
            if (!e || (o && o < e))
                return sc_fail(err, SC_EINVAL, "template \"%s\": '{' at byte %zu is not closed", t, i);
            size_t nl = (size_t)(e - (t + i + 1));
            if (nl == 0) return sc_fail(err, SC_EINVAL, "template \"%s\": empty field name at byte %zu", t, i);
            if (lookup) {
                const char *v;
                size_t vl;
                if (lookup(ctx, t + i + 1, nl, &v, &vl) != 0)
                    return sc_fail(err, SC_ENOTFOUND, "template \"%s\": no field named '%.*s'", t, (int)nl, t + i + 1);
                if (put(b, v, vl)) return sc_fail(err, SC_ENOMEM, "out of memory");
            }
            i += nl + 2;
        } else {
            size_t j = i;
            while (j < n && t[j] != '{' && t[j] != '}') j++;
            if (b && put(b, t + i, j - i)) return sc_fail(err, SC_ENOMEM, "out of memory");
            i = j;
        }
    }
    return SC_OK;
}

int sc_template_check(const char *tmpl, sc_error *err) { return run(tmpl, NULL, NULL, NULL, err); }

int sc_template_render(const char *tmpl, sc_template_lookup lookup, void *ctx, char **out, sc_error *err) {
    *out = NULL;
    sbuf b = {0};
    if (put(&b, "", 0)) return sc_fail(err, SC_ENOMEM, "out of memory");
    int rc = run(tmpl, lookup, ctx, &b, err);
    if (rc != SC_OK) {
        sc_free(b.p);
        return rc;
    }
    *out = b.p;
    return SC_OK;
}
