/* ONNX export: one network of a model file as an ONNX graph (opset 13,
 * IR version 7) that ONNX Runtime, Triton or any ONNX consumer can score,
 * plus an input manifest and the lookup files a client needs to turn raw
 * click-log strings into the graph's id tensors. docs/onnx.md is the user's
 * reference (names, shapes, encodings, an example that scores a CSV).
 *
 * The graph reproduces sc_model_forward (ctr/model.c) in inference mode for
 * every backbone (lr fm dnn widedeep deepfm dcn dcnv2 autoint): the
 * embedding and linear tables, DNN, FM, cross and attention weights are
 * initializers. An MSD model's semantic fields come from its tables, as
 * `semctr eval` without --encoder scores them: the item and user tables
 * and a per-item fusion weight (sigmoid(a log(1 + freq) + b), fixed once
 * training is over) are initializers. A network that needs language-model
 * vectors at scoring time (ELEC's gain network) is refused; ELEC's vanilla
 * network exports like a plain one.
 *
 * Graph inputs, one per dataset field, named like the field:
 *   categorical  int64 (N)     ids in [0, vocab_size)
 *   multi / seq  int64 (N, W)  ids, 0 = padding
 *   numeric      float (N)     the normalised value (as prepare writes it)
 * Outputs: "score" float (N) the click probability, "logit" float (N).
 *
 * Files written for out = DIR/NAME.onnx (NAME = out without ".onnx"):
 *   DIR/NAME.onnx          the graph, written atomically
 *   DIR/NAME.inputs.json   the manifest: per input its name, dtype, shape,
 *                          vocabulary size and how to encode it from raw
 *                          CSV columns (docs/onnx.md)
 *   DIR/NAME.vocab/        the lookup tables the manifest names, one JSON
 *                          object each: raw value -> id, or for a field
 *                          joined from a side table, join key -> the
 *                          field's id(s) or value */
#ifndef SC_EXPORT_ONNX_H
#define SC_EXPORT_ONNX_H

#include <stdint.h>

#include "base/error.h"
#include "train/modelfile.h"

#define SC_ONNX_OPSET 13
#define SC_ONNX_IR_VERSION 7

typedef struct sc_onnx_info {
    int n_inputs, n_nodes, n_initializers;
    uint64_t bytes;           /* size of the .onnx file */
    char manifest[4200];      /* path of NAME.inputs.json */
    char vocab_dir[4200];     /* path of NAME.vocab */
} sc_onnx_info;

/* Export network `network` of the loaded bundle b (NULL: the file's default
 * network, sc_model_bundle_default_network) to out, with its manifest and
 * lookup files beside it. Fails with a message naming the network, field or
 * file at fault: a network that takes language-model vectors, a field name
 * that would clash with the graph's own names, a graph over 2 GiB
 * (protobuf's limit), an unwritable path. info may be NULL. */
int sc_onnx_export(const sc_model_bundle *b, const char *network, const char *out, sc_onnx_info *info,
                   sc_error *err);

/* The manifest and lookup files alone (export/onnx_inputs.c): manifest
 * (a path) describes the inputs of the graph at onnx_path that
 * sc_onnx_export writes for network `network` of b; the lookup files go to
 * vocab_dir (created). Every file is written atomically. */
int sc_onnx_write_inputs(const sc_model_bundle *b, const char *network, const char *onnx_path, const char *manifest,
                         const char *vocab_dir, sc_error *err);

#endif
