/* Knowledge extraction with a teacher LLM (MSD, docs/extract.md): for each
 * row of an entity table (a join of the dataset config: "item", "user"),
 * fill the config's `extract:` prompt template, ask a decoder LLM through its
 * chat template, keep only the answer lines "Field: value" the config names,
 * and append `key<TAB>status<TAB>text` to DIR/<entity>.tsv.
 *
 * - Off-format answers (empty, truncated, too few fields) are retried with a
 *   different seed up to `retries` times, then the entity's raw text is kept
 *   with status "fallback" (counted in the stats).
 * - Cached and resumable: lines are flushed one by one; a rerun skips the
 *   keys already written, and a torn last line (killed mid-write) is cut off
 *   and redone. DIR/<entity>.meta.json records the model (name, size, XXH3 of
 *   its first MiB), the template, the system prompt and the sampling
 *   parameters; a rerun with different ones is an error unless force (which
 *   starts the file afresh). DIR/<entity>.prompts.tsv records the exact
 *   prompt of every entity, DIR/<entity>.log.tsv every raw answer.
 * - Each entity's seed is derived from (seed, key, attempt), so its text does
 *   not depend on the order of the run, --limit, or an interruption.
 * - Lines are written in table order (an entity's once every entity before it
 *   in this run is written), so the files do not depend on --batch.
 * - Over MPI ranks (opts.dist) the entities still to do are split into
 *   rounds, each rank asks its contiguous slice of a round, and rank 0
 *   appends the round's records in table order: the files of one process,
 *   byte for byte. A rank that fails stops every rank at the round's end;
 *   rank 0 writes no record of that round.
 * - Users: {history} is the titles (history_column) of the user's last K
 *   items in the TRAIN split of a prepared dataset, most recent first, so no
 *   valid/test interaction leaks into the knowledge. */
#ifndef SC_METHODS_MSD_EXTRACT_H
#define SC_METHODS_MSD_EXTRACT_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "data/config.h"
#include "dist/dist.h"
#include "lm/generate.h"

typedef struct sc_extract_opts {
    const char *config_path;
    const char *entity;     /* join name with a prompt in extract.prompts */
    const char *out_dir;
    const char *data_dir;   /* prepared dataset (train.scd + schema.scs) for {history}; NULL when unused */
    const char *model_path; /* GGUF decoder */
    sc_gen_params gen;      /* max_tokens, temperature, top_p, top_k, seed (no stop strings) */
    int retries;            /* extra attempts for an off-format answer */
    int64_t limit;          /* only the first `limit` entities of the table (0: all) */
    int batch;              /* entities asked together (< 1: 1); the texts do not depend on it */
    int force;              /* parameters differ from DIR's meta.json: start afresh instead of failing */
    int progress;           /* draw a progress bar on stderr */
    sc_dist *dist;          /* NULL: one process; else MPI ranks share the entities (docs/distributed.md):
                               every rank calls sc_extract_run with the same options, rank 0 alone reads
                               and writes DIR, and the files are those one process writes */
} sc_extract_opts;

typedef struct sc_extract_stats {
    int64_t total;       /* entities in scope (table rows, or limit) */
    int64_t skipped;     /* already in the file */
    int64_t done;        /* written by this run */
    int64_t ok, fallback;          /* of done */
    int64_t fallback_total;        /* in the whole file after the run */
    int64_t retries;     /* extra attempts made */
    int64_t torn;        /* torn last lines cut off */
    int64_t tokens;      /* tokens generated */
    double gen_s;        /* seconds in the model (prompt + generation); over ranks, rank 0's wall
                            time of the generation rounds (the other figures are sums over ranks) */
} sc_extract_stats;

/* Run (or resume) the extraction. SC_EINTERRUPTED when sc_interrupted()
 * became true: what was written stays valid and a rerun continues. */
int sc_extract_run(const sc_extract_opts *o, sc_extract_stats *st, sc_error *err);

/* Keep the lines of answer that give one of p's fields ("Field: value",
 * case-insensitive, list markers and ** ignored; the first line per field),
 * in the order of p->fields, as "Field: value" lines joined by "\n".
 * truncated: generation hit the token limit, so an unterminated last line is
 * dropped. Returns the number of fields kept; *out (sc_free) is NULL on
 * allocation failure. */
int sc_extract_parse(const char *answer, const char *const *fields, int n_fields, int truncated, char **out);

/* As sc_extract_parse, but a value that the prompt itself gives for the same
 * field (a format example copied back) is not kept. prompt may be NULL. */
int sc_extract_parse_against(const char *answer, const char *prompt, const char *const *fields, int n_fields, int truncated,
                             char **out);

/* TSV cell escaping: \t \n \r \\ ; unescape returns -1 on a bad escape, -2
 * when out of memory. */
char *sc_tsv_escape(const char *s);
int sc_tsv_unescape(const char *s, size_t n, char **out);

#endif
