/* Text templates that turn a row into text: "{title}. Genres: {genres}."
 * A {name} is replaced by the value a callback gives for name; "{{" and "}}"
 * stand for literal braces. */
#ifndef SC_TEXT_TEMPLATE_H
#define SC_TEXT_TEMPLATE_H

#include <stddef.h>

#include "base/error.h"

/* Resolve name (name_len bytes, not NUL-terminated): set *val and *val_len and
 * return 0, or return non-zero when there is no such field. */
typedef int (*sc_template_lookup)(void *ctx, const char *name, size_t name_len, const char **val, size_t *val_len);

/* Check the template's syntax (balanced braces, non-empty names) without
 * rendering it; errors give the byte position. */
int sc_template_check(const char *tmpl, sc_error *err);

/* Render tmpl into *out (NUL-terminated, caller frees with sc_free). A name
 * the callback does not know is an error naming it; so is a stray brace. */
int sc_template_render(const char *tmpl, sc_template_lookup lookup, void *ctx, char **out, sc_error *err);

#endif
