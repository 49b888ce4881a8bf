/* The container behind model files: round trip, and every kind of damage
 * (truncation, flipped byte, wrong version, wrong magic) is refused with a
 * message naming the file. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "train/container.h"

static void write_sample(const char *path) {
    float w[100];
    for (int i = 0; i < 100; i++) w[i] = (float)i * 0.5f;
    sc_container_writer wr;
    sc_error e;
    sc_container_writer_init(&wr);
    cr_assert_eq(sc_container_add(&wr, "net/w", 1, w, sizeof w, &e), SC_OK);
    cr_assert_eq(sc_container_add(&wr, "schema", 0, "hello", 5, &e), SC_OK);
    cr_assert_eq(sc_container_add(&wr, "schema", 0, "x", 1, &e), SC_EINTERNAL);
    cJSON *h = cJSON_CreateObject();
    cJSON_AddStringToObject(h, "method", "plain");
    cr_assert_eq(sc_container_write(&wr, path, h, &e), SC_OK, "%s", e.msg);
    cJSON_Delete(h);
    sc_container_writer_free(&wr);
}

Test(container, round_trip) {
    const char *path = "/tmp/sc_test_container.bin";
    write_sample(path);
    sc_container c;
    sc_error e;
    cr_assert_eq(sc_container_open(&c, path, &e), SC_OK, "%s", e.msg);
    const sc_container_entry *w = sc_container_find(&c, "net/w");
    cr_assert(w && w->is_f32 && w->bytes == 400);
    cr_assert_float_eq(((const float *)w->data)[99], 49.5f, 0);
    const sc_container_entry *s = sc_container_find(&c, "schema");
    cr_assert(s && !s->is_f32 && s->bytes == 5 && !memcmp(s->data, "hello", 5));
    cr_assert_null(sc_container_find(&c, "absent"));
    cr_assert_str_eq(cJSON_GetObjectItem(c.header, "method")->valuestring, "plain");
    sc_container_close(&c);
    unlink(path);
}

static int open_damaged(const char *path, long truncate_to, long flip_at, sc_error *e) {
    FILE *f = fopen(path, "r+b");
    if (flip_at >= 0) {
        fseek(f, flip_at, SEEK_SET);
        int ch = fgetc(f);
        fseek(f, flip_at, SEEK_SET);
        fputc(ch ^ 0x40, f);
    }
    fclose(f);
    if (truncate_to >= 0) cr_assert_eq(truncate(path, truncate_to), 0);
    sc_container c;
    int rc = sc_container_open(&c, path, e);
    if (rc == SC_OK) sc_container_close(&c);
    return rc;
}

Test(container, damage_is_detected) {
    const char *path = "/tmp/sc_test_container_bad.bin";
    sc_error e;
    write_sample(path);
    cr_assert_eq(open_damaged(path, 300, -1, &e), SC_EFORMAT);
    cr_assert(strstr(e.msg, path) && strstr(e.msg, "truncated"), "%s", e.msg);
    write_sample(path);
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    cr_assert_eq(open_damaged(path, -1, size - 40, &e), SC_EFORMAT);
    cr_assert(strstr(e.msg, "checksum"), "%s", e.msg);
    write_sample(path);
    cr_assert_eq(open_damaged(path, -1, 8, &e), SC_EVERSION);
    cr_assert(strstr(e.msg, "version"), "%s", e.msg);
    write_sample(path);
    cr_assert_eq(open_damaged(path, -1, 0, &e), SC_EFORMAT);
    cr_assert(strstr(e.msg, "magic"), "%s", e.msg);
    cr_assert_eq(open_damaged(path, 0, -1, &e), SC_EFORMAT);
    unlink(path);
}
