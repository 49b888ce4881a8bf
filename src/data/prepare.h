/* `semctr prepare` as a library call: config -> <out>/train.scd,
 * valid.scd, test.scd, schema.scs, meta.json.
 *
 * Two passes over the input: pass 1 fits vocabularies and numeric
 * statistics on the train rows only, pass 2 encodes every row and writes
 * the columns. Streaming splits (sequential, random, files) keep memory
 * bounded by the vocabularies; split by time loads the input in memory to
 * sort it. The files are written into a private folder that then replaces
 * <out> as a whole (data/datadir.h): whether the run succeeds, fails or is
 * killed, <out> holds one complete dataset. meta.json lists each file's
 * checksum for the readers' check. */
#ifndef SC_DATA_PREPARE_H
#define SC_DATA_PREPARE_H

#include <stdint.h>

#include "base/error.h"
#include "data/config.h"

enum sc_bad_reason { SC_BAD_COLUMNS = 0, SC_BAD_UTF8, SC_BAD_LABEL, SC_BAD_NUMBER, SC_BAD_COUNT };

/* A join's rows, and the good rows of the input whose key it lacks (their
 * joined fields are missing: OOV, padding or fill). */
typedef struct sc_join_stats {
    char name[SC_NAME_MAX];
    int64_t rows;          /* rows of the side table */
    int64_t unmatched;     /* input rows whose key is empty or not in the table */
    char first[512];       /* "file:line: key 'x'" of the first one */
} sc_join_stats;

typedef struct sc_prepare_stats {
    int64_t rows[3];       /* train, valid, test */
    int64_t positives[3];
    int64_t bad[SC_BAD_COUNT];          /* rows skipped per reason */
    char bad_first[SC_BAD_COUNT][512];  /* "file:line: what" of the first one */
    int n_joins;
    sc_join_stats joins[SC_MAX_JOINS];
    int64_t vocab_total;
    double seconds;
} sc_prepare_stats;

/* Name of a bad-row reason ("wrong column count", ...). */
const char *sc_bad_reason_name(int reason);

/* bad_rows: -1 = as the config says, 0 = skip, 1 = fail. stats may be NULL. */
int sc_prepare(const sc_dcfg *cfg, const char *out_dir, int bad_rows, sc_prepare_stats *stats, sc_error *err);
/* Load the config at config_path and prepare it. */
int sc_prepare_file(const char *config_path, const char *out_dir, int bad_rows, sc_prepare_stats *stats,
                    sc_error *err);

#endif
