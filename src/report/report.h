/* `semctr report`: one self-contained HTML page comparing model files on a
 * split of a prepared dataset — ROC and precision-recall curves, a
 * calibration plot, AUC / gAUC / logloss per model and per slice (cold-start
 * and warm items and users, activity buckets), training curves from each
 * model's training log (`train --log`), and for ELEC and MSD models what
 * their training recorded in the file (gain / vanilla / base networks, the
 * guard's decision, MSD's levels). docs/report.md.
 *
 * The numbers come from the code `semctr eval` runs (report/evaluate.h,
 * train/metrics.h): a model's AUC in the report is eval's AUC. */
#ifndef SC_REPORT_REPORT_H
#define SC_REPORT_REPORT_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "data/dataset.h"
#include "report/curves.h"
#include "report/slices.h"
#include "train/metrics.h"

/* One epoch of a training log (JSON lines that `semctr train --log` writes). */
typedef struct sc_report_epoch {
    int epoch;
    double train_loss, valid_auc, valid_gauc, valid_logloss, lr; /* NAN when absent (gAUC: also -1) */
    int best;
} sc_report_epoch;

/* Read a training log: one JSON object per line with at least "epoch" and
 * "valid_auc" (blank lines skipped). *out (allocated, *n entries) in file
 * order; a resumed run's log simply continues. Errors name the file and
 * line: not JSON, a key missing or not a number, no epoch at all. */
int sc_report_read_log(const char *path, sc_report_epoch **out, int *n, sc_error *err);

typedef struct sc_report_options {
    const char *data_dir;   /* prepared dataset (DIR/<split>.scd, DIR/train.scd) */
    const char *split;      /* "test" */
    const char *item_field; /* "item_id" */
    const char *user_field; /* "user_id" */
    int fields_given;       /* bit 1: item_field was asked for, 2: user_field: then absent is an error,
                               else absent only drops those slices (with a note in the page) */
    int64_t cold_max;       /* cold = at most this many train rows (5, as eval --cold and MSD) */
    const int64_t *edges;   /* activity buckets' upper bounds, ascending */
    int n_edges;
    const char *encoder;    /* MSD models: new entities' encoder (eval --encoder), or NULL */
    int threads;
    const char *generator;  /* "semctr 0.1.0", written in the page's footer */
} sc_report_options;

typedef struct sc_report_model {
    char label[256], path[4096], log[4096]; /* log "" when none */
    char method[16], network[32], backbone[32];
    sc_metrics all;
    sc_calib_bin bins[SC_CALIB_BINS];
    sc_curves curves;
    sc_metrics *slice;          /* (report's slices.n) */
    sc_report_epoch *epochs;    /* (n_epochs) from the log */
    int n_epochs;
    cJSON *info;                /* the file's training info (owned copy), or NULL */
    int64_t msd_unknown;        /* MSD: ids of the split not in the file's tables */
} sc_report_model;

typedef struct sc_report {
    sc_report_options opt; /* strings borrowed: they must outlive the report */
    sc_dataset ds, train;
    int ds_open, train_open;
    sc_slices slices;
    char notes[4][512];
    int n_notes;
    sc_report_model *models; /* (n_models) */
    int n_models;
} sc_report;

/* Open the split and the train split and cut the slices. */
int sc_report_open(sc_report *r, const sc_report_options *o, sc_error *err);

/* Score one model file (network: NULL for its default; label: NULL for the
 * file's name; log: a training log or NULL) and add it. Errors name the
 * file: missing, not a model, prepared from another dataset, a bad log. */
int sc_report_add_model(sc_report *r, const char *path, const char *network, const char *label, const char *log,
                        sc_error *err);

/* The page, written atomically to out_path (a temporary, renamed on
 * success; an error leaves any earlier file there as it was). */
int sc_report_write(const sc_report *r, const char *out_path, sc_error *err);

/* The page to an open stream (the tests' and sc_report_write's writer). */
void sc_report_html(const sc_report *r, FILE *fp);

void sc_report_close(sc_report *r);

#endif
