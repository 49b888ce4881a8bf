/* A thread-safe scorer over one loaded model file: the schema turns raw
 * cells into a batch, a network turns the batch into logits.
 *
 * The network's weights are held once, in the loaded bundle, read-only
 * after sc_scorer_load returns (the dense layers also packed for the
 * inference kernel, sc_model_pack). A call checks out a scoring context —
 * scratch only: the activations of batch_cap rows (sc_infer_ws), a batch
 * and a logits buffer — from a pool created on first need up to
 * max_contexts, scores (sc_model_infer), and gives it back. So memory is
 * one model plus max_contexts scratch areas.
 *
 * Dimension letters: B rows of a call, C columns of a call. */
#ifndef SC_SERVE_SCORER_H
#define SC_SERVE_SCORER_H

#include <cjson/cJSON.h>

#include "base/error.h"
#include "data/schema.h"

typedef struct sc_scorer_options {
    const char *network;  /* NULL: "main" when there is one network, else "vanilla" */
    int max_contexts;     /* concurrent calls; 0 = online CPUs */
    int batch_cap;        /* rows per forward pass; 0 = 1024 */
    int threads_per_call; /* threads inside one forward; 0 = 1 */
    int bf16;             /* 1: the dense layers in bfloat16 (sc_model_pack), about twice as fast
                             where the CPU has AVX512_BF16, scores within the tolerance of
                             docs/serve.md; 0: float, the same bits as `semctr predict` */
    const char *encoder;  /* MSD models: the small encoder's directory, to encode new items
                             (a row whose item id is not in the tables and that has an
                             "item_text" cell); NULL: such rows get zeros. Known entities
                             are always table lookups. */
} sc_scorer_options;

/* The request column an MSD model reads a new item's text from. */
#define SC_MSD_ITEM_TEXT_COLUMN "item_text"

typedef struct sc_scorer sc_scorer;

/* Load path, pick the network, refuse networks that need LLM vectors, and
 * score one all-missing row as a check (the result must be finite). *out is
 * the caller's (sc_scorer_free); NULL on failure. */
int sc_scorer_load(sc_scorer **out, const char *path, const sc_scorer_options *o, sc_error *err);
void sc_scorer_free(sc_scorer *s);

/* Score B rows of raw cells (B, C) keyed by col_names (C); NULL cells are
 * missing. probs (B) gets sigmoid(logit). Thread-safe; blocks while every
 * context is busy. Any B >= 0 (split into forward passes of batch_cap).
 * A row whose logit is NaN or infinite fails the call with SC_EINVAL and a
 * message naming the row; *bad_row (when not NULL) gets that row, else -1. */
int sc_scorer_score(sc_scorer *s, int n_rows, int n_cols, const char *const *col_names,
                    const char *const *cells, float *probs, int *bad_row, sc_error *err);

const sc_schema *sc_scorer_schema(const sc_scorer *s);
/* The raw columns the schema reads (and, for an MSD model with an item
 * level, "item_text"); *n gets their count. */
const char *const *sc_scorer_input_columns(const sc_scorer *s, int *n);
const char *sc_scorer_network(const sc_scorer *s);
const char *sc_scorer_backbone(const sc_scorer *s);
const char *sc_scorer_method(const sc_scorer *s);  /* "plain", "elec" */
const char *sc_scorer_path(const sc_scorer *s);
/* The file's training info (borrowed, may be NULL). */
const cJSON *sc_scorer_info(const sc_scorer *s);
/* Create contexts up to n (at most max_contexts) now, each with
 * activations for batch_cap rows, rather than on first need (a context made
 * on demand starts at the rows of its first call and grows): for a server
 * that wants its memory up front, and for tests. */
int sc_scorer_reserve(sc_scorer *s, int n, sc_error *err);
/* Bytes of the network's weights (parameters and the packed copy), held
 * once whatever the number of contexts. */
int64_t sc_scorer_weight_bytes(const sc_scorer *s);
/* Contexts created so far (for tests and metrics). */
int sc_scorer_contexts(sc_scorer *s);
/* MSD counters since load: item/user ids not in the tables (zeros used),
 * new items encoded at request time. 0 for other models. */
void sc_scorer_msd_counts(sc_scorer *s, int64_t *unknown, int64_t *encoded);

/* Text a click log would hold for the number v: integers without a
 * fraction ("242"), others the shortest form that reads back as v. buf
 * holds at least 32 bytes. Returns buf. */
char *sc_format_number(double v, char *buf);

#endif
