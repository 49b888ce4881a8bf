/* The protobuf wire format, write side only: just enough to write ONNX
 * files (export/onnx.c) without a protobuf library.
 *
 * Why hand-written: ONNX needs seven messages (ModelProto, GraphProto,
 * NodeProto, TensorProto, ValueInfoProto, AttributeProto,
 * OperatorSetIdProto, plus the small TypeProto / TensorShapeProto /
 * StringStringEntryProto) and three wire types (varint, 32-bit,
 * length-delimited). protobuf-c would add a build dependency, a code
 * generator step and generated sources for ~30 messages we never use; the
 * encoder below is about a hundred lines.
 *
 * A message is built in an sc_pb buffer; a nested message is built in its
 * own buffer and appended with sc_pb_msg (protobuf prefixes it with its
 * length). Allocation failures are sticky: every call after one is a no-op
 * and sc_pb.oom stays set, so callers check once at the end. Not
 * thread-safe per buffer; buffers are independent. */
#ifndef SC_EXPORT_PROTOBUF_H
#define SC_EXPORT_PROTOBUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct sc_pb {
    uint8_t *buf; /* (len) encoded bytes, owned */
    size_t len, cap;
    int oom;      /* an allocation failed: the contents are incomplete */
} sc_pb;

enum { SC_PB_VARINT = 0, SC_PB_I64 = 1, SC_PB_LEN = 2, SC_PB_I32 = 5 };

void sc_pb_free(sc_pb *p); /* frees buf and zeroes *p; a zeroed sc_pb is an empty buffer */
void sc_pb_raw(sc_pb *p, const void *data, size_t n);

/* Bytes of x as a varint (1..10). */
size_t sc_pb_varint_size(uint64_t x);
void sc_pb_varint(sc_pb *p, uint64_t x);
/* Field key: (field << 3) | wire type, as a varint. */
void sc_pb_key(sc_pb *p, int field, int wire);

/* Fields. int64 / int32 / enum values are varints; a negative value takes
 * ten bytes (two's complement), as protobuf writes it. */
void sc_pb_int(sc_pb *p, int field, int64_t v);
void sc_pb_float(sc_pb *p, int field, float v); /* fixed 32-bit, little-endian */
void sc_pb_bytes(sc_pb *p, int field, const void *data, size_t n);
void sc_pb_str(sc_pb *p, int field, const char *s);
/* A nested message: key, length, then sub's bytes (sub's oom carries over). */
void sc_pb_msg(sc_pb *p, int field, const sc_pb *sub);
/* Key and length of a length-delimited field whose n bytes the caller
 * writes next (to stream large payloads). */
void sc_pb_len_prefix(sc_pb *p, int field, uint64_t n);
/* Bytes of sc_pb_len_prefix(field, n) plus the n payload bytes. */
uint64_t sc_pb_len_field_size(int field, uint64_t n);

#endif
