/* The container behind model files: round trip, and every kind of damage
 * (truncation, flipped byte, wrong version, wrong magic, an edited header)
 * is refused with a message naming the file; version 1 files still open. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

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

/* The whole file in a malloc'ed buffer. */
static uint8_t *slurp(const char *path, long *size) {
    FILE *f = fopen(path, "rb");
    cr_assert(f, "%s", path);
    fseek(f, 0, SEEK_END);
    *size = ftell(f);
    rewind(f);
    uint8_t *b = malloc((size_t)*size);
    cr_assert(b && fread(b, 1, (size_t)*size, f) == (size_t)*size);
    fclose(f);
    return b;
}

static void spill(const char *path, const uint8_t *b, long size) {
    FILE *f = fopen(path, "wb");
    cr_assert(f && fwrite(b, 1, (size_t)size, f) == (size_t)size);
    fclose(f);
}

static int open_bytes(const char *path, const uint8_t *b, long size, sc_error *e) {
    spill(path, b, size);
    sc_container c;
    int rc = sc_container_open(&c, path, e);
    if (rc == SC_OK) sc_container_close(&c);
    return rc;
}

Test(container, an_edited_header_is_refused) {
    char path[] = "/tmp/sc_test_container_hdr_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    write_sample(path);
    long size;
    uint8_t *good = slurp(path, &size), *b = malloc((size_t)size);
    uint64_t hlen;
    memcpy(&hlen, good + 16, 8);
    /* an entry offset edited in place, same length: "net/w" moved 64 bytes on
     * reads the zero padding and the schema as weights, a wrong but
     * well-formed file that loaded before the checksum covered the header */
    char *hdr = (char *)good + 24, *at = memmem(hdr, hlen, "\"offset\":448", 12);
    cr_assert(at, "%.*s", (int)hlen, hdr);
    memcpy(b, good, (size_t)size);
    memcpy((char *)b + (at - (char *)good), "\"offset\":384", 12);
    sc_error e;
    cr_assert_eq(open_bytes(path, b, size, &e), SC_EFORMAT);
    cr_assert(strstr(e.msg, "checksum") && strstr(e.msg, path), "%s", e.msg);
    /* and every other byte before the data: magic, version, length, header, padding */
    for (uint64_t i = 0; i < 24 + hlen; i++) {
        memcpy(b, good, (size_t)size);
        b[i] ^= 0x01;
        int rc = open_bytes(path, b, size, &e);
        cr_assert(rc == SC_EFORMAT || rc == SC_EVERSION, "byte %llu flipped: %d", (unsigned long long)i, rc);
    }
    free(good);
    free(b);
    unlink(path);
}

/* A version 1 file as semctr wrote them: the checksum covers the data
 * section only. */
Test(container, version_1_files_still_open) {
    char path[] = "/tmp/sc_test_container_v1_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    const char *json = "{\"method\":\"plain\",\"entries\":[{\"name\":\"net/w\",\"dtype\":\"f32\",\"offset\":0,\"bytes\":8},"
                       "{\"name\":\"schema\",\"dtype\":\"bytes\",\"offset\":64,\"bytes\":5}]}";
    uint64_t hlen = strlen(json), start = (24 + hlen + 63) / 64 * 64;
    long size = (long)(start + 64 + 5 + 16);
    uint8_t *b = calloc(1, (size_t)size);
    uint32_t ver[2] = {1, 0};
    float w[2] = {1.5f, -2};
    memcpy(b, "SCTRMODL", 8);
    memcpy(b + 8, ver, 8);
    memcpy(b + 16, &hlen, 8);
    memcpy(b + 24, json, hlen);
    memcpy(b + start, w, 8);
    memcpy(b + start + 64, "hello", 5);
    uint64_t sum = XXH3_64bits(b + start, 64 + 5);
    memcpy(b + size - 16, &sum, 8);
    memcpy(b + size - 8, "SCTREND", 8);
    spill(path, b, size);
    sc_container c;
    sc_error e;
    cr_assert_eq(sc_container_open(&c, path, &e), SC_OK, "%s", e.msg);
    const sc_container_entry *x = sc_container_find(&c, "net/w");
    cr_assert(x && x->bytes == 8 && ((const float *)x->data)[1] == -2);
    cr_assert_str_eq(cJSON_GetObjectItem(c.header, "method")->valuestring, "plain");
    sc_container_close(&c);
    b[start + 1] ^= 0x10; /* its data is still checked */
    cr_assert_eq(open_bytes(path, b, size, &e), SC_EFORMAT);
    cr_assert(strstr(e.msg, "checksum"), "%s", e.msg);
    free(b);
    unlink(path);
}
