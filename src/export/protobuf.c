/* The protobuf wire format, write side (see export/protobuf.h). */
#include "export/protobuf.h"

#include <string.h>

#include "base/alloc.h"

void sc_pb_free(sc_pb *p) {
    sc_free(p->buf);
    memset(p, 0, sizeof *p);
}

static int reserve(sc_pb *p, size_t n) {
    if (p->oom) return -1;
    if (p->len + n <= p->cap) return 0;
    size_t cap = p->cap ? p->cap : 256;
    while (cap < p->len + n) {
        if (cap > SIZE_MAX / 2) {
            p->oom = 1;
            return -1;
        }
        cap *= 2;
    }
    uint8_t *b = sc_realloc(p->buf, cap);
    if (!b) {
        p->oom = 1;
        return -1;
    }
    p->buf = b;
    p->cap = cap;
    return 0;
}

void sc_pb_raw(sc_pb *p, const void *data, size_t n) {
    if (n == 0 || reserve(p, n)) return;
    memcpy(p->buf + p->len, data, n);
    p->len += n;
}

size_t sc_pb_varint_size(uint64_t x) {
    size_t n = 1;
    while (x >= 0x80) {
        x >>= 7;
        n++;
    }
    return n;
}

void sc_pb_varint(sc_pb *p, uint64_t x) {
    uint8_t b[10];
    size_t n = 0;
    while (x >= 0x80) {
        b[n++] = (uint8_t)(x | 0x80); /* low 7 bits first, high bit: more follows */
        x >>= 7;
    }
    b[n++] = (uint8_t)x;
    sc_pb_raw(p, b, n);
}

void sc_pb_key(sc_pb *p, int field, int wire) { sc_pb_varint(p, ((uint64_t)field << 3) | (uint64_t)wire); }

void sc_pb_int(sc_pb *p, int field, int64_t v) {
    sc_pb_key(p, field, SC_PB_VARINT);
    sc_pb_varint(p, (uint64_t)v);
}

void sc_pb_float(sc_pb *p, int field, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    uint8_t b[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
    sc_pb_key(p, field, SC_PB_I32);
    sc_pb_raw(p, b, 4);
}

void sc_pb_len_prefix(sc_pb *p, int field, uint64_t n) {
    sc_pb_key(p, field, SC_PB_LEN);
    sc_pb_varint(p, n);
}

uint64_t sc_pb_len_field_size(int field, uint64_t n) {
    return sc_pb_varint_size(((uint64_t)field << 3) | SC_PB_LEN) + sc_pb_varint_size(n) + n;
}

void sc_pb_bytes(sc_pb *p, int field, const void *data, size_t n) {
    sc_pb_len_prefix(p, field, n);
    sc_pb_raw(p, data, n);
}

void sc_pb_str(sc_pb *p, int field, const char *s) { sc_pb_bytes(p, field, s, strlen(s)); }

void sc_pb_msg(sc_pb *p, int field, const sc_pb *sub) {
    if (sub->oom) p->oom = 1;
    sc_pb_bytes(p, field, sub->buf, sub->len);
}
