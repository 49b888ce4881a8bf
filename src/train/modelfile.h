/* Model files: the dataset schema (fields, vocabularies, join tables), one or
 * more named networks (their backbone config and weights), and free-form
 * training information, in one container file (train/container.h).
 *
 * A plain model has one network, "main". An ELEC model has "gain" and
 * "vanilla" (and the adapted-LLM head, "adapter"); `semctr export --network
 * vanilla` writes a plain model of the vanilla network alone, which scores
 * with no language model and no vector store.
 *
 * Header JSON (besides the container's "entries"):
 *   {"format": "semctr-model", "method": "plain" | "elec",
 *    "networks": [{"name": "main", "config": {backbone, embed_dim, ...}}],
 *    "info": {...training details and metrics...}}
 * Entries: "schema" (bytes, data/schema serialisation), "<network>/<param>"
 * (f32) for every parameter of every network, plus caller-added entries. */
#ifndef SC_TRAIN_MODELFILE_H
#define SC_TRAIN_MODELFILE_H

#include <cjson/cJSON.h>

#include "ctr/model.h"
#include "data/schema.h"
#include "train/container.h"

#define SC_MAX_NETWORKS 4

typedef struct sc_network {
    char name[32];
    sc_model *model;
} sc_network;

typedef struct sc_model_bundle {
    sc_schema *schema;  /* owned */
    char method[16];    /* "plain", "elec" */
    int n_networks;
    sc_network networks[SC_MAX_NETWORKS]; /* models owned */
    cJSON *info;        /* owned, may be NULL */
    sc_container file;  /* the open file when loaded (extra entries live here) */
    int file_open;
} sc_model_bundle;

/* Config <-> JSON, used by model files and checkpoints. */
cJSON *sc_model_config_to_json(const sc_model_config *cfg);
int sc_model_config_from_json(const cJSON *j, sc_model_config *cfg, sc_error *err);

/* Add the schema and every network's parameters to a container writer and
 * fill header (an object created by the caller) with format, method,
 * networks and info. Data pointers stay borrowed until the writer commits;
 * *schema_buf receives the serialised schema the caller frees after writing. */
int sc_model_bundle_stage(const sc_model_bundle *b, sc_container_writer *w, cJSON *header,
                          uint8_t **schema_buf, sc_error *err);

/* A plain model's bundle: schema (borrowed) and model as its one network, "main". */
void sc_model_bundle_plain(sc_model_bundle *b, const sc_schema *schema, sc_model *model);

/* Write a bundle to path atomically. */
int sc_model_bundle_save(const sc_model_bundle *b, const char *path, sc_error *err);

/* Load a model file: schema, networks (weights copied into fresh models with
 * n_threads threads), info. The file stays open in b->file for extra entries. */
int sc_model_bundle_load(sc_model_bundle *b, const char *path, int n_threads, sc_error *err);

/* Check that a split file has the fields a model was trained on (names,
 * kinds, widths, vocabulary sizes), so a model is never scored on a dataset
 * prepared with another config. */
int sc_check_dataset_fields(const sc_schema *schema, const sc_dataset *ds, sc_error *err);

/* The network a file serves unless told otherwise: its only network, or
 * ELEC's "vanilla" (the one that needs no language model). */
const char *sc_model_bundle_default_network(const sc_model_bundle *b);

/* The network of that name, or NULL. */
sc_model *sc_model_bundle_network(const sc_model_bundle *b, const char *name);

void sc_model_bundle_free(sc_model_bundle *b);

#endif
