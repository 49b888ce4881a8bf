/* The prepared dataset folder as one unit: its files change together or not
 * at all, and every reader checks that they belong together.
 *
 * `semctr prepare --out DIR` writes every file into a private sibling
 * folder DIR.tmp-PID, then exchanges it with DIR in one rename
 * (renameat2 RENAME_EXCHANGE), so DIR holds one complete dataset at every
 * moment: the old one until the exchange, the new one after it, whenever
 * the run is interrupted or killed. Files in DIR that are not dataset files
 * (train's elec-*.vec and msd-*.vec caches, a user's notes) are carried
 * over: regular files as hard links before the exchange, anything else
 * moved after it. A later prepare removes the DIR.tmp-PID folders that
 * killed runs left behind.
 *
 * DIR/meta.json is the manifest: "files" lists each dataset file with its
 * checksum (a split's is the one in its header, see data/dataset.h; the
 * schema's is the XXH3-64 of its bytes). sc_dataset_open and sc_schema_load
 * refuse a file whose checksum is not the one listed, with a message that
 * names the file and the `semctr prepare` command that rebuilds the folder. */
#ifndef SC_DATA_DATADIR_H
#define SC_DATA_DATADIR_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

#define SC_META_FILE "meta.json"

/* 1 when name is one of the files prepare writes (schema.scs, meta.json,
 * train.scd, valid.scd, test.scd) or a temporary of one ("x.tmp.PID"). */
int sc_datadir_is_dataset_file(const char *name);

/* Before prepare writes anything: resolve DIR (trailing '/' dropped, a
 * symbolic link followed, parents created) into final (cap bytes), remove
 * the DIR.tmp-PID folders of dead runs, and create the empty folder stage
 * (cap bytes) that the new files go to. Fails when DIR exists and is not a
 * folder, or is the current folder or holds it. */
int sc_datadir_begin(const char *dir, char *final, char *stage, size_t cap, sc_error *err);

/* Make stage the dataset at final (see above) and remove what was there.
 * stage must hold a complete dataset, its files closed and synced. On
 * failure final is as it was and stage is left for sc_datadir_discard. */
int sc_datadir_commit(const char *stage, const char *final, sc_error *err);

/* Remove stage: its dataset files, and extras that final also has (the same
 * file, linked). Any other entry is moved into final when final lacks it,
 * else kept, and then stage stays (a message says so). Never fails. */
void sc_datadir_discard(const char *stage, const char *final);

/* The check of every reader: the folder of path has a meta.json whose
 * "files" lists path's file name with this checksum. */
int sc_datadir_check_file(const char *path, uint64_t checksum, sc_error *err);

/* Test hook (fault injection): when $SEMCTR_FAULT equals point, the process
 * kills itself with SIGKILL there, as `kill -9` at that moment would. */
void sc_fault_point(const char *point);

#endif
