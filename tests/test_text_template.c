/* text: templates that turn rows into text. */
#include <criterion/criterion.h>
#include <string.h>

#include "base/alloc.h"
#include "text/template.h"

static int movie(void *ctx, const char *name, size_t n, const char **val, size_t *vl) {
    (void)ctx;
    static const char *k[] = {"title", "genres"}, *v[] = {"Toy Story (1995)", "Animation|Children's|Comedy"};
    for (int i = 0; i < 2; i++)
        if (strlen(k[i]) == n && memcmp(k[i], name, n) == 0) {
            *val = v[i];
            *vl = strlen(v[i]);
            return 0;
        }
    return -1;
}

Test(text_template, renders_fields) {
    char *out;
    sc_error e;
    cr_assert_eq(sc_template_render("{title}. Genres: {genres}.", movie, NULL, &out, &e), SC_OK, "%s", e.msg);
    cr_assert_str_eq(out, "Toy Story (1995). Genres: Animation|Children's|Comedy.");
    sc_free(out);
    cr_assert_eq(sc_template_render("{{literal}} {title}", movie, NULL, &out, &e), SC_OK);
    cr_assert_str_eq(out, "{literal} Toy Story (1995)");
    sc_free(out);
    cr_assert_eq(sc_template_render("", movie, NULL, &out, &e), SC_OK);
    cr_assert_str_eq(out, "");
    sc_free(out);
}

Test(text_template, errors_name_the_field_or_position) {
    char *out = NULL;
    sc_error e;
    cr_assert_eq(sc_template_render("{title} by {director}", movie, NULL, &out, &e), SC_ENOTFOUND);
    cr_assert_null(out);
    cr_assert(strstr(e.msg, "'director'"), "%s", e.msg);
    cr_assert_eq(sc_template_check("{title", &e), SC_EINVAL);
    cr_assert(strstr(e.msg, "not closed"), "%s", e.msg);
    cr_assert_eq(sc_template_check("a } b", &e), SC_EINVAL);
    cr_assert_eq(sc_template_check("{}", &e), SC_EINVAL);
    cr_assert_eq(sc_template_check("{a{b}}", &e), SC_EINVAL);
    cr_assert_eq(sc_template_check("{title}: {{x}}", &e), SC_OK);
}
