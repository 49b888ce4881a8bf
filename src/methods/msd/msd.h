/* MSD training, model files and scoring (arXiv 2412.06860; methods/msd/layers.h for
 * the layers, docs/msd.md for the method and its defaults).
 *
 * Texts per level (item, user) — from an extraction directory written by
 * `semctr extract` (DIR/item.tsv, DIR/user.tsv) or, for an entity missing
 * there, ELEC's entity textualisation — are encoded once by the frozen small
 * encoder (through the vector-store cache). A trainable feature adaptor per
 * level maps them into the CTR embedding space; with fusion, the adapted
 * vectors of the history items are pooled with frequency-adaptive weights.
 * The resulting fields enter the backbone (SC_EXTRA_FIELDS) and everything
 * is trained end to end with the CTR loss.
 *
 * The model file (method "msd", one network "main") also holds, per level,
 * the adapted vector of every known entity indexed by its id in the
 * dataset's vocabulary (tables), the item frequency table, the fusion
 * parameters and the adaptors' weights (to encode new items at serving
 * time); each table carries the hash of the adaptor weights that made it.
 *
 * Dimension letters: N rows of a split, B batch, S encoder size, D embedding
 * size, K semantic fields, T entities of a level, V vocabulary size, W
 * history width. */
#ifndef SC_METHODS_MSD_H
#define SC_METHODS_MSD_H

#include "ctr/mlp.h"
#include "methods/msd/layers.h"
#include "methods/msd/lora.h"
#include "ctr/model.h"
#include "data/schema.h"
#include "train/modelfile.h"
#include "train/trainer.h"

typedef struct sc_msd_config {
    int levels;          /* SC_MSD_ITEM | SC_MSD_USER | SC_MSD_FUSION, 0 = the plain backbone, or SC_MSD_AUTO
                            (default): the levels that help on validation (sc_msd_train_auto) */
    int adaptor_hidden;  /* 0: a Linear S -> D adaptor (default); H > 0: S -> H (ReLU) -> D */
    float adaptor_init;  /* scale of the adaptor's output-layer weights at init, relative to Xavier: 0 (default)
                            makes every semantic field start at zero, so the model starts as the plain
                            backbone and the fields grow only as far as the CTR loss pulls them; 1 = Xavier */
    int cold_max;        /* cold-start slice: test rows whose item has <= cold_max train interactions (5) */
    const char *item_field;    /* the item id field (default "item_id") */
    const char *user_field;    /* the user id field (default "user_id") */
    const char *history_field; /* the behaviour sequence (default: the sequence field over item ids) */
    sc_msd_lora_config lora;   /* LoRA on the small encoder's top layers (rank 0: off, the default; methods/msd/lora.h) */
} sc_msd_config;

void sc_msd_config_default(sc_msd_config *c);

/* Parse "item,user,fusion" / "all" / "none" / "auto" into a level set. */
int sc_msd_parse_levels(const char *s, int *levels, sc_error *err);
/* "item,user,fusion" (or "none") into buf. */
const char *sc_msd_levels_name(int levels, char *buf, size_t cap);

/* The frozen encoder's vectors of each level's entities, and where every
 * row of each split points (level 0 = item, 1 = user). */
typedef struct sc_msd_semantics {
    int S;                    /* encoder size */
    char encoder[300];        /* encoder tag, as the vector store records it */
    int field[3];             /* schema field index of item, user, history (-1: none) */
    int64_t T[2];             /* entities per level (0: level absent) */
    float *table[2];          /* (T, S) encoder vectors, owned */
    int32_t *slot[3][2];      /* per split, per level: (N) the row's entity, -1 = none */
    int64_t V[2];             /* vocabulary size of the item / user field */
    int32_t *id_slot[2];      /* (V) entity of each vocabulary id, -1 = none */
    float *item_freq;         /* (V[0]) interactions per item id in the train split */
    /* where the texts came from, per level */
    int64_t n_extracted[2], n_fallback_status[2], n_raw[2];
    int available;            /* the levels these semantics can feed (a bit set) */
    /* with LoRA (cfg->lora.rank > 0): the encoder's frozen layers over every distinct text, and
       each entity's text among them */
    sc_msd_lora_base *lora_base;
    int32_t *text_of[2];      /* (T) per level: the entity's distinct text (row of lora_base) */
} sc_msd_semantics;

/* Build the semantics of the three splits (test may be NULL): texts from
 * texts_dir/{item,user}.tsv when texts_dir is not NULL (an entity missing
 * there, or every entity without texts_dir, gets its ELEC entity text,
 * counted in n_raw), encoded with the encoder in encoder_dir through the
 * vector store cache_path. Bad TSV lines are errors naming file and line.
 * With cfg->lora.rank > 0 the distinct texts also go through the encoder's
 * frozen lower layers once (lora_base, text_of).
 * dist (NULL: one process): over more than one rank every rank calls this,
 * the texts are encoded over the ranks (sc_elec_encode_texts) and rank 0
 * gets the semantics of one process, bit for bit; the other ranks get
 * everything but the tables (table[l] = NULL, no LoRA base): they only help
 * encode. The LoRA base runs on rank 0. */
int sc_msd_semantics_build(const sc_schema *schema, const sc_dataset *const split[3], const sc_msd_config *cfg,
                           const char *texts_dir, const char *encoder_dir, const char *cache_path, int n_threads,
                           sc_dist *dist, sc_msd_semantics *out, sc_error *err);
void sc_msd_semantics_free(sc_msd_semantics *s);

/* Read one extraction file (header line, then key<TAB>status<TAB>text with
 * \t \n \\ escaped). keys/texts/ok (n) are the caller's (sc_msd_tsv_free).
 * A line without three fields or a status other than ok|fallback is an
 * error naming file and line. */
typedef struct sc_msd_tsv {
    int64_t n;
    char **keys, **texts;
    int *ok; /* 1 for status ok, 0 for fallback */
} sc_msd_tsv;
int sc_msd_tsv_read(const char *path, sc_msd_tsv *out, sc_error *err);
void sc_msd_tsv_free(sc_msd_tsv *t);

typedef struct sc_msd_report {
    sc_metrics all, cold;   /* cold: the cold-start slice (cold.n rows) */
    double plain_ms_per_100, msd_ms_per_100; /* scoring 100 rows: backbone alone, with MSD lookups */
} sc_msd_report;

/* Train backbone + adaptors + fusion end to end (sc_fit: epochs, early
 * stopping, checkpoint/resume) and write the best epoch to out_path.
 * model_cfg: the backbone (extra_dim / extra_mode are set here). */
int sc_msd_train(const sc_schema *schema, const sc_dataset *train, const sc_dataset *valid,
                 const sc_dataset *test, const sc_msd_semantics *sem, const sc_model_config *model_cfg,
                 const sc_train_config *tcfg, const sc_msd_config *mcfg, cJSON *info, const char *out_path,
                 sc_msd_report *valid_report, sc_msd_report *test_report, sc_error *err);

/* --msd-levels auto: never worse than the plain backbone on validation. The
 * plain backbone (levels none: the same weights as `semctr train`) and each
 * level the semantics can feed alone are trained; a level is kept when its
 * validation AUC beats the plain backbone's; with two or more kept, their
 * combination is trained too. The candidate with the best validation AUC
 * (the plain backbone when no level helps) is written to out_path; info gets
 * "msd_selection" (every candidate, its validation AUC, kept or not) and
 * "base" (the plain backbone's validation and test metrics). Candidates keep
 * no checkpoints (each takes seconds); mcfg->levels is ignored. */
int sc_msd_train_auto(const sc_schema *schema, const sc_dataset *train, const sc_dataset *valid,
                      const sc_dataset *test, const sc_msd_semantics *sem, const sc_model_config *model_cfg,
                      const sc_train_config *tcfg, const sc_msd_config *mcfg, cJSON *info, const char *out_path,
                      int *chosen_levels, sc_msd_report *valid_report, sc_msd_report *test_report, sc_error *err);

/* ---- a loaded MSD model file ---- */
typedef struct sc_msd_model {
    int levels, K, D, S, W;
    int field[3];                 /* item, user, history field indices */
    int64_t V[2];                 /* table rows (vocabulary sizes) */
    const float *table[2];        /* (V, D) adapted vectors by id (borrowed from the open file) */
    const float *item_freq;       /* (V[0]) */
    float ab[2];                  /* fusion */
    sc_mlp *adaptor[2];           /* for entities not in the tables (new items) */
    char encoder[300];
    /* LoRA on the encoder's top layers (lora.rank 0: none; files without it load as before) */
    sc_lora lora;
    float *lora_w;                /* the A and B tensors (owned) */
    int lora_hidden, lora_intermediate; /* the encoder's C and F they were trained for */
    char lora_encoder[256];       /* the encoder's name (model directory base name) */
} sc_msd_model;

/* Read the MSD section of a loaded bundle (method "msd"); checks every
 * table against its adaptor's version (hash of the stored adaptor weights):
 * a mismatch is an error naming the table. */
int sc_msd_model_load(sc_msd_model *m, const sc_model_bundle *b, sc_error *err);
void sc_msd_model_free(sc_msd_model *m);

/* The extra input (B, K*D) of a batch by table lookups of its ids; an id
 * that is padding, OOV or out of the table gives zeros and is counted in
 * *n_unknown (item and user ids; history slots that are OOV are skipped).
 * item_override (B) or NULL: a row's adapted item vector to use instead of
 * the lookup (a new item encoded at request time). Thread-safe. */
int sc_msd_model_extra(const sc_msd_model *m, const sc_batch *b, const float *const *item_override,
                       const float *const *user_override, float *extra, int64_t *n_unknown, sc_error *err);

/* The same for every row of a split: *extra (N, K*D) is the caller's
 * (sc_free). With encoder_dir, a row whose item or user id is not in the
 * vocabulary (a new entity) gets the small encoder's vector of its raw
 * entity text (ELEC's entity textualisation of the split's text columns)
 * through the stored adaptor, as serving does for a new item; *n_encoded
 * counts those entities. Without it, new entities get zeros. */
int sc_msd_model_extra_dataset(sc_msd_model *m, const sc_schema *schema, const sc_dataset *ds,
                               const char *encoder_dir, int n_threads, float **extra, int64_t *n_unknown,
                               int64_t *n_encoded, sc_error *err);

/* Scores prob (N, the caller's) of network `net` of a loaded MSD bundle on
 * every row of ds, its semantic fields from the file's tables (and, with
 * encoder_dir, new entities encoded as sc_msd_model_extra_dataset does):
 * what `semctr eval` scores. *n_unknown / *n_encoded may be NULL. */
int sc_msd_bundle_predict(const sc_model_bundle *b, sc_model *net, const sc_dataset *ds, const char *encoder_dir,
                          int n_threads, float *prob, int64_t *n_unknown, int64_t *n_encoded, sc_error *err);

/* The small encoder's vectors out (n, S) of new entities' texts, as the model
 * was trained: with its LoRA adapters when it has them (enc must then be the
 * BERT-family encoder they were trained on: an error names the mismatch),
 * else enc's pooled vectors, not normalised. Not thread-safe on one enc. */
int sc_msd_model_encode_texts(const sc_msd_model *m, sc_textvec *enc, const char *const *texts, int n, float *out,
                              sc_error *err);

/* The version of a semantic table: a hash (sc_msd_weights_hash) of the
 * adaptor's weights and, with LoRA, of the LoRA weights (n_lora tensors). */
uint64_t sc_msd_table_version(sc_mlp *adaptor, const sc_param *lora, int n_lora);

/* Adapt encoder vectors x (n, S) of new entities of level 0 (item) or 1
 * (user) with the stored adaptor: out (n, D). Not thread-safe
 * on one sc_msd_model (the adaptor keeps activations): callers lock. */
int sc_msd_model_adapt_items_level(sc_msd_model *m, int level, const float *x, int n, float *out, sc_error *err);

#endif
