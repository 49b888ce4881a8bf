/* semctr train: fit a CTR backbone on a prepared dataset. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/util.h"
#include "cli/cli.h"
#include "ctr/model.h"
#include "data/dataset.h"
#include "data/schema.h"
#include "dist/dist.h"
#include "methods/elec/elec.h"
#include "methods/elec/text.h"
#include "methods/msd/msd.h"
#include "train/sharded.h"
#include "train/trainer.h"

static const char *USAGE =
    "usage: semctr train --data DIR --model NAME --out FILE [options]\n"
    "\n"
    "Train a CTR model on a dataset made by `semctr prepare`. The best epoch by\n"
    "validation AUC (or --monitor logloss) is written to FILE (atomically) as soon as it is found.\n"
    "\n"
    "  --data DIR           prepared dataset (train.scd, valid.scd, schema)\n"
    "  --model NAME         lr fm dnn widedeep deepfm dcn dcnv2 autoint\n"
    "  --out FILE           model file to write\n"
    "  --epochs N           maximum epochs (10)\n"
    "  --batch-size N       (256)\n"
    "  --lr X               initial learning rate (0.001)\n"
    "  --optimizer NAME     adam | adagrad (adam; both update embedding rows lazily)\n"
    "  --l2-embed X         L2 on the embedding rows of each batch (1e-5)\n"
    "  --embed-dim N        embedding size (16)\n"
    "  --hidden A,B,..      DNN tower sizes (256,128; DCN and DCNv2: 128,128)\n"
    "  --dropout X          DNN dropout (0)\n"
    "  --cross N            DCN/DCNv2 cross layers (2)\n"
    "  --att-layers N       AutoInt attention layers (3)\n"
    "  --att-heads N        AutoInt heads (2)\n"
    "  --att-dim N          AutoInt size per head (embed-dim / heads)\n"
    "  --monitor M          auc | logloss: the validation metric that picks the best epoch, decays\n"
    "                       the lr and stops early (auc; logloss when the probability itself is used)\n"
    "  --patience N         early stop after N epochs without a better monitored metric (2)\n"
    "  --lr-decay X         multiply the lr by X when the monitored metric stalls (0.1; 1 = off)\n"
    "  --seed N             weights, shuffle, dropout (2026)\n"
    "  --threads N          (all cores)\n"
    "  --precision P        f32 | bf16: the DNN and DCNv2 cross layers' GEMMs on bfloat16 inputs with\n"
    "                       float sums, float weights and optimizer (f32; docs/train.md)\n"
    "  --log FILE           JSON-lines metrics log, one object per epoch\n"
    "  --checkpoint FILE    resumable checkpoint after each epoch (FILE = OUT.ckpt by default)\n"
    "  --resume             continue from the checkpoint\n"
    "  --max-steps N        stop after N batches (benchmarks)\n"
    "  --json               print the result as one JSON object on stdout\n"
    "\n"
    "Data-parallel (`make MPI=1`, then `mpirun -np N semctr train ...`; docs/distributed.md): each\n"
    "rank takes a slice of every batch of --batch-size rows, gradients are summed over ranks, rank 0\n"
    "validates and writes the model and checkpoint; the same model as one process with that batch.\n"
    "  --shard-embeddings   split every id table's rows over the ranks (row id on rank id mod N,\n"
    "                       with its optimizer state) instead of a copy on each; --method plain.\n"
    "                       The model file and checkpoint are the usual ones\n"
    "\n"
    "ELEC (--method elec; docs/elec.md):\n"
    "  --method NAME        plain | elec (plain)\n"
    "  --lm DIR|FILE.gguf   the LLM: a BERT-family model directory (default: the cached\n"
    "                       all-MiniLM-L6-v2) or a Llama-family GGUF file (e.g. SmolLM2)\n"
    "  --elec-granularity G sample | entity: one text per row, or per user and item (sample)\n"
    "  --elec-text COLS     text columns to textualise, comma-separated (all)\n"
    "  --elec-cache FILE    vector store caching the LLM vectors (DATA/elec-G-MODEL.vec)\n"
    "  --alpha X            score-level distillation weight (1)\n"
    "  --beta X             representation-level distillation weight (1)\n"
    "  --temperature X      soft-target temperature (1)\n"
    "  --kd-score KIND      bce | mse (bce)\n"
    "  --elec-schedule S    joint | staged (joint)\n"
    "  --repr-dim N         adapted-LLM representation size (64)\n"
    "  --adapter-hidden N   transformation MLP hidden size (256)\n"
    "  --adapter-epochs N   adapted-LLM epochs (10, early stopped; 0 = no pre-training)\n"
    "  --adapter-tune       keep training the transformation MLP with the gain network\n"
    "  --elec-folds K       cross-fitting: training rows get out-of-fold representations from K\n"
    "                       adapters, each fitted without them (5; 1 = in-sample)\n"
    "  --elec-guard on|off  train the plain backbone too; distil only from a teacher that beats it on\n"
    "                       validation, serve the distilled network only if it beats it (on)\n"
    "  --elec-time-llm      also time the language model on 1,000 test rows' texts\n"
    "\n"
    "MSD (--method msd; docs/msd.md):\n"
    "  --msd-texts DIR      extracted texts DIR/item.tsv, DIR/user.tsv (semctr extract); entities\n"
    "                       missing there (or without DIR) get their raw entity text\n"
    "  --msd-levels L       auto | item,user,fusion | all | none (auto: the plain backbone and each\n"
    "                       level the dataset has are trained; the levels that beat the plain backbone\n"
    "                       on validation are kept, and the best of them, their combination or the\n"
    "                       plain backbone is written; a list forces those levels)\n"
    "  --msd-adaptor-init X scale of the adaptors' output weights at init, times Xavier (0: the\n"
    "                       semantic fields start at zero, the model as the plain backbone)\n"
    "  --msd-encoder DIR    the small encoder (default: the cached all-MiniLM-L6-v2)\n"
    "  --msd-cache FILE     vector store of the encoded texts (DATA/msd-MODEL.vec)\n"
    "  --msd-adaptor-hidden N  0: Linear adaptor (default); N: a two-layer MLP, hidden N\n"
    "  --msd-cold N         cold-start slice: items with <= N train interactions (5)\n"
    "  --msd-lora-rank R    LoRA of rank R on the encoder's top layers, trained end to end with the\n"
    "                       CTR loss; new entities are encoded with it (0: off, the frozen encoder)\n"
    "  --msd-lora-layers N  the top N encoder layers are adapted (1)\n"
    "  --msd-lora-lr X      learning rate of the LoRA weights, decayed with --lr's (0.01)\n"
    "  --msd-lora-every S   training steps whose gradients are summed into one LoRA step (100)\n"
    "  --msd-item-field F, --msd-user-field F, --msd-history F   (item_id, user_id, the item sequence)\n";

/* ${SEMCTR_CACHE:-$HOME/.cache/semctr}/models/all-MiniLM-L6-v2, where scripts/fetch_model.sh puts it. */
static void default_model_dir(char *out, size_t cap) {
    const char *model = getenv("SEMCTR_MODEL");
    if (model && *model) {
        snprintf(out, cap, "%s", model);
        return;
    }
    const char *cache = getenv("SEMCTR_CACHE");
    const char *home = getenv("HOME");
    if (cache && *cache) snprintf(out, cap, "%s/models/all-MiniLM-L6-v2", cache);
    else snprintf(out, cap, "%s/.cache/semctr/models/all-MiniLM-L6-v2", home ? home : ".");
}

typedef struct elec_args {
    const char *lm, *text_cols, *cache;
    int granularity;
    int time_llm; /* measure the language model's time per 1,000 rows (re-encodes texts) */
    sc_elec_config cfg;
} elec_args;

/* Textualise, encode (cached), train the ELEC pair, report. */
static int run_elec(const char *data, const char *model_name, const char *out, const sc_model_config *mc,
                    const sc_train_config *tc, elec_args *ea, sc_schema *schema, const sc_dataset *train,
                    const sc_dataset *valid, const sc_dataset *test, int json, sc_dist *dist, sc_error *err) {
    char lm_dir[4096], cache[4300], name[128] = "";
    if (ea->lm) snprintf(lm_dir, sizeof lm_dir, "%s", ea->lm);
    else default_model_dir(lm_dir, sizeof lm_dir);
    const sc_dataset *splits[3] = {train, valid, test};
    sc_elec_texts texts;
    int rc = sc_elec_textualize(schema, splits, ea->granularity, ea->text_cols, &texts, err);
    if (rc) return rc;
    sc_info("ELEC: %lld distinct %s texts%s%s (e.g. \"%s\")", (long long)texts.n_texts[0], texts.part_name[0],
            texts.n_parts > 1 ? " and more for " : "", texts.n_parts > 1 ? texts.part_name[1] : "",
            texts.n_texts[0] ? texts.texts[0][0] : "");
    const char *base = strrchr(lm_dir, '/');
    base = base && base[1] ? base + 1 : lm_dir;
    if (ea->cache) snprintf(cache, sizeof cache, "%s", ea->cache);
    else snprintf(cache, sizeof cache, "%s/elec-%s-%s.vec", data, ea->granularity == SC_ELEC_ENTITY ? "entity" : "sample", base);
    float *tables[2] = {NULL, NULL};
    int dim = 0;
    /* over ranks every rank encodes its share of the texts; rank 0 alone trains (docs/distributed.md) */
    rc = sc_elec_encode_texts(&texts, lm_dir, cache, tc->n_threads, dist, tables, &dim, name, sizeof name, err);
    if (!rc && sc_dist_rank(dist) == 0) {
        sc_elec_vectors vec[3];
        sc_elec_vectors_from_texts(&texts, tables, dim, vec);
        cJSON *info = cJSON_CreateObject();
        cJSON *e = cJSON_AddObjectToObject(info, "elec");
        cJSON_AddStringToObject(e, "encoder", name);
        cJSON_AddNumberToObject(e, "llm_dim", dim);
        cJSON_AddStringToObject(e, "granularity", ea->granularity == SC_ELEC_ENTITY ? "entity" : "sample");
        cJSON_AddStringToObject(e, "text_columns", ea->text_cols ? ea->text_cols : "all");
        cJSON_AddNumberToObject(e, "alpha", ea->cfg.alpha);
        cJSON_AddNumberToObject(e, "beta", ea->cfg.beta);
        cJSON_AddNumberToObject(e, "temperature", ea->cfg.temperature);
        cJSON_AddStringToObject(e, "kd_score", ea->cfg.score_loss == SC_KD_MSE ? "mse" : "bce");
        cJSON_AddStringToObject(e, "schedule", ea->cfg.schedule == SC_ELEC_STAGED ? "staged" : "joint");
        cJSON_AddNumberToObject(e, "repr_dim", ea->cfg.repr_dim);
        cJSON_AddStringToObject(e, "backbone", model_name);
        cJSON_AddNumberToObject(e, "seed", (double)tc->seed);
        if (ea->time_llm) {
            double llm_ms = 0;
            rc = sc_elec_time_llm(&texts, test ? 2 : 1, lm_dir, tc->n_threads, &llm_ms, err);
            cJSON_AddNumberToObject(e, "llm_encode_ms_per_1000_rows", llm_ms);
        }
        sc_elec_report vr, tr;
        if (!rc) rc = sc_elec_train(schema, train, valid, test, vec, mc, tc, &ea->cfg, info, out, &vr, &tr, err);
        if (!rc) {
            sc_info("ELEC %s: valid AUC adapter %.5f, gain %.5f, vanilla %.5f; model written to %s", model_name,
                    vr.adapter.auc, vr.gain.auc, vr.vanilla.auc, out);
            if (test)
                sc_info("ELEC %s: test  AUC adapter %.5f, gain %.5f, vanilla %.5f", model_name, tr.adapter.auc,
                        tr.gain.auc, tr.vanilla.auc);
            if (json) {
                char *js = cJSON_PrintUnformatted(info);
                printf("%s\n", js);
                free(js);
            }
        }
        cJSON_Delete(info);
    }
    sc_free(tables[0]);
    sc_free(tables[1]);
    sc_elec_texts_free(&texts);
    return rc;
}

/* Texts, encoder vectors (cached), MSD training, report. */
static int run_msd(const char *data, const char *model_name, const char *out, const sc_model_config *mc,
                   const sc_train_config *tc, const sc_msd_config *md, const char *texts, const char *encoder,
                   const char *cache_arg, sc_schema *schema, const sc_dataset *train, const sc_dataset *valid,
                   const sc_dataset *test, int json, sc_dist *dist, sc_error *err) {
    char enc[4096], cache[4300], lv[64];
    if (encoder) snprintf(enc, sizeof enc, "%s", encoder);
    else default_model_dir(enc, sizeof enc);
    const char *base = strrchr(enc, '/');
    base = base && base[1] ? base + 1 : enc;
    if (cache_arg) snprintf(cache, sizeof cache, "%s", cache_arg);
    else snprintf(cache, sizeof cache, "%s/msd-%s.vec", data, base);
    const sc_dataset *splits[3] = {train, valid, test};
    sc_msd_semantics sem;
    /* over ranks every rank encodes its share of the texts; rank 0 alone trains (docs/distributed.md) */
    int rc = sc_msd_semantics_build(schema, splits, md, texts, enc, cache, tc->n_threads, dist, &sem, err);
    if (rc) return rc;
    if (sc_dist_rank(dist) > 0) {
        sc_msd_semantics_free(&sem);
        return SC_OK;
    }
    cJSON *info = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(info, "msd_settings");
    cJSON_AddStringToObject(e, "levels", sc_msd_levels_name(md->levels, lv, sizeof lv));
    cJSON_AddStringToObject(e, "texts", texts ? texts : "");
    cJSON_AddStringToObject(e, "encoder", sem.encoder);
    cJSON_AddNumberToObject(e, "encoder_dim", sem.S);
    cJSON_AddNumberToObject(e, "adaptor_hidden", md->adaptor_hidden);
    cJSON_AddNumberToObject(e, "lora_rank", md->lora.rank);
    if (md->lora.rank) {
        cJSON_AddNumberToObject(e, "lora_layers", md->lora.layers);
        cJSON_AddNumberToObject(e, "lora_lr", md->lora.lr);
        cJSON_AddNumberToObject(e, "lora_every", md->lora.every);
    }
    cJSON_AddStringToObject(e, "backbone", model_name);
    cJSON_AddNumberToObject(e, "seed", (double)tc->seed);
    sc_msd_report vr, tr;
    if (md->levels == SC_MSD_AUTO) {
        int chosen = 0;
        rc = sc_msd_train_auto(schema, train, valid, test, &sem, mc, tc, md, info, out, &chosen, &vr, &tr, err);
        sc_msd_levels_name(chosen, lv, sizeof lv);
    } else {
        rc = sc_msd_train(schema, train, valid, test, &sem, mc, tc, md, info, out, &vr, &tr, err);
    }
    if (!rc) {
        sc_info("MSD %s (%s): valid AUC %.5f (cold slice %.5f, %lld rows); model written to %s", model_name, lv,
                vr.all.auc, vr.cold.auc, (long long)vr.cold.n, out);
        if (test)
            sc_info("MSD %s (%s): test AUC %.5f, gAUC %.5f (cold slice %.5f, %lld rows)", model_name, lv, tr.all.auc,
                    tr.all.gauc, tr.cold.auc, (long long)tr.cold.n);
        if (json) {
            char *js = cJSON_PrintUnformatted(info);
            printf("%s\n", js);
            free(js);
        }
    }
    cJSON_Delete(info);
    sc_msd_semantics_free(&sem);
    return rc;
}

static int parse_hidden(const char *s, sc_model_config *cfg) {
    cfg->n_hidden = 0;
    if (!strcmp(s, "") || !strcmp(s, "none")) return 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        char *end;
        long v = strtol(tok, &end, 10);
        if (*end || v < 1 || v > 65536 || cfg->n_hidden == SC_MAX_LAYERS) return -1;
        cfg->hidden[cfg->n_hidden++] = (int)v;
    }
    return 0;
}

int cmd_train(int argc, char **argv) {
    const char *data = NULL, *model_name = NULL, *out = NULL;
    sc_train_config tc;
    sc_train_config_default(&tc);
    const char *hidden = NULL, *ckpt = NULL;
    long embed_dim = 0, cross = -1, att_layers = -1, att_heads = -1, att_dim = -1;
    double dropout = -1;
    int json = 0, elec = 0, msd = 0, shard = 0;
    elec_args ea = {0};
    sc_msd_config md;
    sc_msd_config_default(&md);
    const char *msd_texts = NULL, *msd_encoder = NULL, *msd_cache = NULL;
    sc_elec_config_default(&ea.cfg);
    /* numbers read as long / double, into the configs after the checks; words checked after the parse */
    long epochs = tc.epochs, batch_size = tc.batch_size, patience = tc.patience, seed = (long)tc.seed,
         threads = tc.n_threads, max_steps = (long)tc.max_steps, msd_adaptor_hidden = md.adaptor_hidden,
         msd_cold = md.cold_max, repr_dim = ea.cfg.repr_dim, adapter_hidden = ea.cfg.adapter_hidden,
         adapter_epochs = ea.cfg.adapter_epochs, elec_folds = ea.cfg.folds;
    double lr = tc.lr, l2_embed = tc.l2_embed, lr_decay = tc.lr_decay, alpha = ea.cfg.alpha, beta = ea.cfg.beta,
           temperature = ea.cfg.temperature, msd_adaptor_init = md.adaptor_init, msd_lora_lr = md.lora.lr;
    long msd_lora_rank = md.lora.rank, msd_lora_layers = md.lora.layers, msd_lora_every = md.lora.every;
    const char *precision = NULL;
    const char *dropout_s = NULL, *optimizer = NULL, *method = NULL, *msd_levels = NULL, *granularity = NULL,
               *kd_score = NULL, *schedule = NULL, *elec_guard = NULL, *monitor = NULL;
    const cli_opt opts[] = {
        CLI_STR("--data", &data),
        CLI_STR("--model", &model_name),
        CLI_STR("--out", &out),
        CLI_INT("--epochs", &epochs, 1, 100000),
        CLI_INT("--batch-size", &batch_size, 1, 1 << 20),
        CLI_FLOAT("--lr", &lr),
        CLI_STR("--optimizer", &optimizer),
        CLI_FLOAT("--l2-embed", &l2_embed),
        CLI_INT("--embed-dim", &embed_dim, 1, 4096),
        CLI_STR("--hidden", &hidden),
        CLI_STR("--dropout", &dropout_s),
        CLI_INT("--cross", &cross, 0, 64),
        CLI_INT("--att-layers", &att_layers, 0, 64),
        CLI_INT("--att-heads", &att_heads, 1, 64),
        CLI_INT("--att-dim", &att_dim, 1, 4096),
        CLI_STR("--monitor", &monitor),
        CLI_INT("--patience", &patience, 1, 1000),
        CLI_FLOAT("--lr-decay", &lr_decay),
        CLI_INT("--seed", &seed, 0, 0x7fffffffL),
        CLI_INT("--threads", &threads, 1, 256),
        CLI_STR("--precision", &precision),
        CLI_STR("--log", &tc.log_path),
        CLI_STR("--checkpoint", &ckpt),
        CLI_INT("--max-steps", &max_steps, 1, 0x7fffffffL),
        CLI_STR("--method", &method),
        CLI_STR("--msd-texts", &msd_texts),
        CLI_STR("--msd-encoder", &msd_encoder),
        CLI_STR("--msd-cache", &msd_cache),
        CLI_STR("--msd-item-field", &md.item_field),
        CLI_STR("--msd-user-field", &md.user_field),
        CLI_STR("--msd-history", &md.history_field),
        CLI_STR("--msd-levels", &msd_levels),
        CLI_INT("--msd-adaptor-hidden", &msd_adaptor_hidden, 0, 65536),
        CLI_INT("--msd-cold", &msd_cold, 0, 0x7fffffffL),
        CLI_FLOAT("--msd-adaptor-init", &msd_adaptor_init),
        CLI_INT("--msd-lora-rank", &msd_lora_rank, 0, 4096),
        CLI_INT("--msd-lora-layers", &msd_lora_layers, 1, SC_LORA_MAX_LAYERS),
        CLI_FLOAT("--msd-lora-lr", &msd_lora_lr),
        CLI_INT("--msd-lora-every", &msd_lora_every, 1, 0x7fffffffL),
        CLI_STR("--lm", &ea.lm),
        CLI_STR("--elec-text", &ea.text_cols),
        CLI_STR("--elec-cache", &ea.cache),
        CLI_STR("--elec-granularity", &granularity),
        CLI_FLOAT("--alpha", &alpha),
        CLI_FLOAT("--beta", &beta),
        CLI_FLOAT("--temperature", &temperature),
        CLI_STR("--kd-score", &kd_score),
        CLI_STR("--elec-schedule", &schedule),
        CLI_INT("--repr-dim", &repr_dim, 1, 4096),
        CLI_INT("--adapter-hidden", &adapter_hidden, 1, 65536),
        CLI_INT("--adapter-epochs", &adapter_epochs, 0, 1000),
        CLI_FLAG("--adapter-tune", &ea.cfg.adapter_tune),
        CLI_INT("--elec-folds", &elec_folds, 1, 100),
        CLI_STR("--elec-guard", &elec_guard),
        CLI_FLAG("--elec-time-llm", &ea.time_llm),
        CLI_FLAG("--resume", &tc.resume),
        CLI_FLAG("--shard-embeddings", &shard),
        CLI_FLAG("--json", &json),
    };
    int code = cli_parse("train", "option", USAGE, opts, CLI_N(opts), argc, argv);
    if (code != CLI_GO_ON) return code;
    /* out-of-range numbers are refused without a message, as they always were */
    if (!(lr > 0) || l2_embed < 0 || lr_decay <= 0 || lr_decay > 1 || alpha < 0 || beta < 0 || !(temperature > 0))
        return EXIT_USAGE;
    if (!(msd_adaptor_init >= 0 && msd_adaptor_init <= 100)) {
        fprintf(stderr, "semctr train: --msd-adaptor-init must be in [0, 100] (0: fields start at zero, 1: Xavier)\n");
        return EXIT_USAGE;
    }
    if (!(msd_lora_lr > 0 && msd_lora_lr <= 10)) {
        fprintf(stderr, "semctr train: --msd-lora-lr must be in (0, 10]\n");
        return EXIT_USAGE;
    }
    if (dropout_s && (cli_float("train", "--dropout", dropout_s, &dropout) || dropout < 0 || dropout >= 1)) {
        fprintf(stderr, "semctr train: --dropout must be in [0, 1)\n");
        return EXIT_USAGE;
    }
    /* words in the order of their enums */
    static const char *const OPTIMIZERS[] = {"adam", "adagrad", NULL}, *const METHODS[] = {"plain", "elec", "msd", NULL},
                             *const GRANULARITIES[] = {"sample", "entity", NULL}, *const KD[] = {"bce", "mse", NULL},
                             *const SCHEDULES[] = {"joint", "staged", NULL}, *const ONOFF[] = {"off", "on", NULL},
                             *const MONITORS[] = {"auc", "logloss", NULL};
    int method_k = 0;
    if (cli_choice("train", "--optimizer", optimizer, OPTIMIZERS, &tc.optimizer) ||
        cli_choice("train", "--method", method, METHODS, &method_k))
        return EXIT_USAGE;
    elec = method_k == 1;
    msd = method_k == 2;
    if (msd_levels) {
        sc_error e2 = {0};
        if (sc_msd_parse_levels(msd_levels, &md.levels, &e2)) {
            fprintf(stderr, "semctr train: %s\n", e2.msg);
            return EXIT_USAGE;
        }
    }
    if (cli_choice("train", "--elec-granularity", granularity, GRANULARITIES, &ea.granularity) ||
        cli_choice("train", "--kd-score", kd_score, KD, &ea.cfg.score_loss) ||
        cli_choice("train", "--elec-schedule", schedule, SCHEDULES, &ea.cfg.schedule) ||
        cli_choice("train", "--elec-guard", elec_guard, ONOFF, &ea.cfg.guard) ||
        cli_choice("train", "--monitor", monitor, MONITORS, &tc.monitor))
        return EXIT_USAGE;
    tc.epochs = (int)epochs;
    tc.batch_size = (int)batch_size;
    tc.lr = (float)lr;
    tc.l2_embed = (float)l2_embed;
    tc.patience = (int)patience;
    tc.lr_decay = (float)lr_decay;
    tc.seed = (uint64_t)seed;
    tc.n_threads = (int)threads;
    tc.max_steps = max_steps;
    md.adaptor_hidden = (int)msd_adaptor_hidden;
    md.cold_max = (int)msd_cold;
    md.adaptor_init = (float)msd_adaptor_init;
    md.lora.rank = (int)msd_lora_rank;
    md.lora.layers = (int)msd_lora_layers;
    md.lora.lr = (float)msd_lora_lr;
    md.lora.every = (int)msd_lora_every;
    ea.cfg.alpha = (float)alpha;
    ea.cfg.beta = (float)beta;
    ea.cfg.temperature = (float)temperature;
    ea.cfg.repr_dim = (int)repr_dim;
    ea.cfg.adapter_hidden = (int)adapter_hidden;
    ea.cfg.adapter_epochs = (int)adapter_epochs;
    ea.cfg.folds = (int)elec_folds;
    if (!data || !model_name || !out) {
        fprintf(stderr, "semctr train: --data, --model and --out are required\n%s", USAGE);
        return EXIT_USAGE;
    }
    sc_backbone bb;
    if (sc_backbone_parse(model_name, &bb)) {
        fprintf(stderr, "semctr train: unknown model '%s' (lr fm dnn widedeep deepfm dcn dcnv2 autoint)\n", model_name);
        return EXIT_USAGE;
    }
    sc_model_config mc;
    sc_model_config_default(&mc, bb);
    if (embed_dim) mc.embed_dim = (int)embed_dim;
    if (hidden && parse_hidden(hidden, &mc)) {
        fprintf(stderr, "semctr train: --hidden must be sizes like 256,128 (at most %d)\n", SC_MAX_LAYERS);
        return EXIT_USAGE;
    }
    if (dropout >= 0) mc.dropout = (float)dropout;
    if (cross >= 0) mc.n_cross = (int)cross;
    if (att_layers >= 0) mc.att_layers = (int)att_layers;
    if (att_heads > 0) mc.att_heads = (int)att_heads;
    if (att_dim > 0) mc.att_dim = (int)att_dim;
    mc.n_threads = tc.n_threads;
    if (precision && strcmp(precision, "f32") != 0 && strcmp(precision, "bf16") != 0) {
        fprintf(stderr, "semctr train: --precision must be f32 or bf16, not '%s'\n", precision);
        return EXIT_USAGE;
    }
    mc.bf16 = precision && strcmp(precision, "bf16") == 0;

    char ckpt_default[4200];
    if (!ckpt) {
        snprintf(ckpt_default, sizeof ckpt_default, "%s.ckpt", out);
        ckpt = ckpt_default;
    }
    tc.ckpt_path = ckpt;
    sc_install_signal_handlers();

    sc_error err = {0};
    if (shard && (elec || msd)) {
        fprintf(stderr, "semctr train: --shard-embeddings trains --method plain, not %s\n", elec ? "elec" : "msd");
        return EXIT_USAGE;
    }
    sc_dist *dist = NULL;
    if (sc_dist_init(&dist, NULL, NULL, &err)) return cli_fail("train", &err);
    int rank = sc_dist_rank(dist), ranks = sc_dist_size(dist);
    if (ranks > 1) {
        if (rank > 0) sc_log_level = SC_LOG_QUIET; /* rank 0 speaks for the job */
        /* ELEC / MSD: the texts are encoded over the ranks, then rank 0 trains as one process
           (tc.dist stays NULL) while the others wait (docs/distributed.md) */
        if (!elec && !msd) tc.dist = dist;
        else sc_info("--method %s over %d ranks: the texts are encoded over the ranks, the CTR networks are "
                     "trained on rank 0", elec ? "elec" : "msd", ranks);
    }
    sc_schema *schema = NULL;
    sc_dataset train = {0}, valid = {0}, test = {0};
    sc_model *model = NULL;
    char path[4200];
    int rc = sc_schema_load(&schema, data, &err);
    if (!rc) {
        snprintf(path, sizeof path, "%s/train.scd", data);
        rc = sc_dataset_open(&train, path, &err);
    }
    if (!rc) {
        snprintf(path, sizeof path, "%s/valid.scd", data);
        rc = sc_dataset_open(&valid, path, &err);
    }
    int have_test = 0;
    if (!rc && (elec || msd)) {
        snprintf(path, sizeof path, "%s/test.scd", data);
        if (sc_file_exists(path)) {
            rc = sc_dataset_open(&test, path, &err);
            have_test = !rc;
        }
        if (!rc && elec)
            rc = run_elec(data, model_name, out, &mc, &tc, &ea, schema, &train, &valid, have_test ? &test : NULL, json,
                          dist, &err);
        else if (!rc)
            rc = run_msd(data, model_name, out, &mc, &tc, &md, msd_texts, msd_encoder, msd_cache, schema, &train, &valid,
                         have_test ? &test : NULL, json, dist, &err);
        rc = sc_dist_agree_idle(dist, rc, &err); /* the other ranks wait for rank 0's training, idle */
        sc_dataset_close(&test);
        sc_dataset_close(&train);
        sc_dataset_close(&valid);
        sc_schema_free(schema);
        return cli_dist_finish("train", dist, rc, &err);
    }
    /* The weights start as rank 0's (sc_fit broadcasts them); the seed per rank gives each rank
       its own dropout masks instead of every rank dropping the same units. */
    if (!rc && shard) {
        tc.dist = dist; /* one process too: one shard */
        rc = sc_sharded_model_create(&model, &mc, train.fields, train.n_fields, tc.batch_size, tc.seed + (uint64_t)rank,
                                     &err);
    } else if (!rc) {
        rc = sc_model_create(&model, &mc, train.fields, train.n_fields, tc.seed + (uint64_t)rank, &err);
    }
    sc_train_result res;
    if (!rc) {
        sc_info("training %s on %lld rows (valid %lld), batch %d, %d threads%s", model_name, (long long)train.n_rows,
                (long long)valid.n_rows, tc.batch_size, tc.n_threads, ranks > 1 ? " per rank" : "");
        if (ranks > 1) sc_info("data-parallel over %d ranks: about %d rows of each batch per rank", ranks,
                               (tc.batch_size + ranks - 1) / ranks);
        rc = shard ? sc_train_sharded(model, schema, &train, &valid, &tc, out, &res, &err)
                   : sc_train(model, schema, &train, &valid, &tc, out, &res, &err);
    }
    if (!rc && rank == 0) {
        sc_info("best epoch %d: valid AUC %.5f, gAUC %.5f, logloss %.5f; model written to %s", res.best_epoch,
                res.best_valid.auc, res.best_valid.gauc, res.best_valid.logloss, out);
        sc_dist_stats ds;
        sc_dist_get_stats(dist, &ds);
        double per = ds.steps ? 1.0 / (double)ds.steps : 0;
        if (json)
            printf("{\"model\": \"%s\", \"monitor\": \"%s\", \"best_epoch\": %d, \"epochs_run\": %d, \"valid_auc\": %.6f, "
                   "\"valid_gauc\": %.6f, \"valid_logloss\": %.6f, \"valid_ece\": %.6f, \"samples_per_s\": %.1f, \"dense_flops_per_sample\": %.0f, \"steps\": %lld, "
                   "\"peak_rss_bytes\": %lld, \"ranks\": %d, \"dist\": {\"dense_bytes_per_step\": %.0f, "
                   "\"sparse_bytes_sent_per_step\": %.1f, \"sparse_bytes_recv_per_step\": %.1f, \"comm_s\": %.3f}, \"out\": \"%s\"}\n",
                   model_name, sc_monitor_name(tc.monitor), res.best_epoch, res.epochs_run, res.best_valid.auc,
                   isnan(res.best_valid.gauc) ? -1.0 : res.best_valid.gauc, res.best_valid.logloss,
                   isnan(res.best_valid.ece) ? -1.0 : res.best_valid.ece, res.samples_per_s,
                   sc_model_flops_per_sample(model), (long long)res.steps, (long long)sc_peak_rss_bytes(), ranks,
                   ds.dense_bytes * per, ds.sparse_bytes_sent * per, ds.sparse_bytes_recv * per, ds.comm_s, out);
    }
    if (model) sc_model_free(model);
    sc_dataset_close(&train);
    sc_dataset_close(&valid);
    if (schema) sc_schema_free(schema);
    return cli_dist_finish("train", dist, rc, &err);
}
