/* ONNX export (semctr export --format onnx): the protobuf writer byte for
 * byte, then from the user's side on MovieLens-100K — every backbone,
 * ELEC's vanilla network and an MSD model are exported, and ONNX Runtime
 * scores the test split within 1e-5 of semctr (tests/onnx_check.py, run
 * through tests/onnx_check.sh, which installs onnxruntime / onnx / numpy
 * from PyPI into a venv beside the binary: test-only dependencies); raw CSV
 * rows encoded with the exported lookup files by the docs' example script
 * score as `semctr predict` scores them. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "base/alloc.h"
#include "base/file.h"
#include "export/protobuf.h"
#include "methods/msd/msd.h"
#include "test_cli_util.h"
#include "train/modelfile.h"
#include "train/trainer.h"

/* ---------------- protobuf wire format ---------------- */

static void expect_bytes(const sc_pb *p, const uint8_t *want, size_t n) {
    cr_assert(!p->oom);
    cr_assert_eq(p->len, n, "%zu bytes, want %zu", p->len, n);
    for (size_t i = 0; i < n; i++) cr_assert_eq(p->buf[i], want[i], "byte %zu: %02x, want %02x", i, p->buf[i], want[i]);
}

Test(protobuf, varints_keys_and_fields_as_protobuf_encodes_them) {
    sc_pb p = {0};
    /* the encoding guide's examples: 1 -> 01, 150 -> 96 01, 300 -> ac 02 */
    sc_pb_varint(&p, 1);
    sc_pb_varint(&p, 150);
    sc_pb_varint(&p, 300);
    sc_pb_varint(&p, UINT64_MAX);
    expect_bytes(&p, (const uint8_t[]){0x01, 0x96, 0x01, 0xac, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                        0x01},
                 15);
    cr_assert_eq(sc_pb_varint_size(0), 1);
    cr_assert_eq(sc_pb_varint_size(127), 1);
    cr_assert_eq(sc_pb_varint_size(128), 2);
    cr_assert_eq(sc_pb_varint_size(UINT64_MAX), 10);
    sc_pb_free(&p);
    /* field 1 = 150 (08 96 01); a negative int64 takes ten bytes; a float is fixed32 little-endian */
    sc_pb_int(&p, 1, 150);
    sc_pb_int(&p, 3, -1);
    sc_pb_float(&p, 2, 1.0f);
    expect_bytes(&p, (const uint8_t[]){0x08, 0x96, 0x01, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
                                        0x15, 0x00, 0x00, 0x80, 0x3f},
                 19);
    sc_pb_free(&p);
    /* string field 2 = "testing" (12 07 ...); a nested message 3 { 1: 150 } (1a 03 08 96 01) */
    sc_pb sub = {0};
    sc_pb_str(&p, 2, "testing");
    sc_pb_int(&sub, 1, 150);
    sc_pb_msg(&p, 3, &sub);
    expect_bytes(&p, (const uint8_t[]){0x12, 0x07, 't', 'e', 's', 't', 'i', 'n', 'g', 0x1a, 0x03, 0x08, 0x96, 0x01}, 14);
    cr_assert_eq(sc_pb_len_field_size(3, sub.len), 5);
    cr_assert_eq(sc_pb_len_field_size(16, 200), 2 + 2 + 200); /* key 16<<3|2 = 130 and length 200 take two bytes each */
    sc_pb_free(&p);
    sc_pb_free(&sub);
    /* an empty buffer: a zeroed struct, nothing written */
    sc_pb_bytes(&p, 4, NULL, 0);
    expect_bytes(&p, (const uint8_t[]){0x22, 0x00}, 2);
    sc_pb_free(&p);
}

/* ---------------- end to end ---------------- */

static void cleanup(const char *dir) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* A fresh temp dir with ml-100k prepared in DIR/data. */
static void prepare(char *dir) {
    strcpy(dir, "/tmp/sc_onnx_XXXXXX");
    cr_assert(mkdtemp(dir));
    cr_assert_eq(tcli_semctr("prepare --config configs/ml-100k.yaml --out %s/data", dir), 0, "%s", tcli_out());
}

/* `bash tests/onnx_check.sh ARGS`: its exit status, its output in tcli_out(). */
static int onnx_check(const char *fmt, ...) {
    char args[2048], cmd[2300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "bash tests/onnx_check.sh %s 2>&1", args);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    size_t n = fread(tcli_out(), 1, (1 << 16) - 1, p);
    tcli_out()[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_raw(const char *path, const void *data, size_t bytes) {
    FILE *f = fopen(path, "wb");
    cr_assert(f, "%s", path);
    cr_assert_eq(fwrite(data, 1, bytes, f), bytes);
    cr_assert_eq(fclose(f), 0);
}

/* Export DIR/NAME as DIR/NAME.onnx; semctr scores the test split (as eval
 * does; an MSD model by its tables), the split's ids and values and the
 * scores go to DIR/NAME.dump/, and ONNX Runtime must score the same rows
 * within 1e-5 (onnx.checker first). */
static void export_and_compare(const char *dir, const char *name) {
    cr_assert_eq(tcli_semctr("export --model %s/%s --format onnx --out %s/%s.onnx", dir, name, dir, name), 0, "%s",
                 tcli_out());
    char path[512], dump[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    sc_model_bundle b;
    sc_error err;
    cr_assert_eq(sc_model_bundle_load(&b, path, 2, &err), 0, "%s", err.msg);
    sc_model *net = sc_model_bundle_network(&b, sc_model_bundle_default_network(&b));
    cr_assert(net);
    sc_dataset ds;
    snprintf(path, sizeof path, "%s/data/test.scd", dir);
    cr_assert_eq(sc_dataset_open(&ds, path, &err), 0, "%s", err.msg);
    int64_t N = ds.n_rows;
    float *prob = sc_malloc(sizeof(float) * (size_t)N);
    if (!strcmp(b.method, "msd"))
        cr_assert_eq(sc_msd_bundle_predict(&b, net, &ds, NULL, 2, prob, NULL, NULL, &err), 0, "%s", err.msg);
    else
        cr_assert_eq(sc_predict_dataset(net, &ds, NULL, 4096, prob, &err), 0, "%s", err.msg);
    /* a trained model, not a near-constant one: a 1e-5 match would say little otherwise */
    float lo = 1, hi = 0;
    for (int64_t i = 0; i < N; i++) {
        lo = prob[i] < lo ? prob[i] : lo;
        hi = prob[i] > hi ? prob[i] : hi;
    }
    cr_assert(hi - lo > 0.1f, "%s scores only span [%g, %g]", name, lo, hi);
    snprintf(dump, sizeof dump, "%s/%s.dump", dir, name);
    cr_assert_eq(sc_mkdirs(dump, NULL), 0);
    for (int f = 0; f < ds.n_fields; f++) {
        const sc_field_info *fi = &ds.fields[f];
        snprintf(path, sizeof path, "%s/%d.bin", dump, f);
        if (fi->kind == SC_FIELD_NUMERIC) {
            write_raw(path, ds.values[f], sizeof(float) * (size_t)N);
            continue;
        }
        int64_t n = N * fi->width;
        int64_t *ids = sc_malloc(sizeof(int64_t) * (size_t)n);
        for (int64_t i = 0; i < n; i++) ids[i] = ds.ids[f][i];
        write_raw(path, ids, sizeof(int64_t) * (size_t)n);
        sc_free(ids);
    }
    snprintf(path, sizeof path, "%s/expected.f32", dump);
    write_raw(path, prob, sizeof(float) * (size_t)N);
    sc_free(prob);
    sc_dataset_close(&ds);
    sc_model_bundle_free(&b);
    int rc = onnx_check("scores '%s/%s.onnx' '%s/%s.inputs.json' '%s'", dir, name, dir, name, dump);
    cr_assert_eq(rc, 0, "%s: ONNX Runtime vs semctr:\n%s", name, tcli_out());
    cr_log_info("%s: %s", name, tcli_out()); /* the differences, with --verbose */
    cr_assert(strstr(tcli_out(), "checker ok") && strstr(tcli_out(), "rows 10000"), "%s", tcli_out());
}

/* AutoInt's options the CLI does not set (scores scaled by 1/sqrt(att_dim),
 * no residual projection): DIR/autoint's trained weights in a model with
 * them, written as DIR/autoint-scaled. */
static void autoint_options(const char *dir) {
    char path[256];
    snprintf(path, sizeof path, "%s/autoint", dir);
    sc_model_bundle b;
    sc_error err;
    cr_assert_eq(sc_model_bundle_load(&b, path, 2, &err), 0, "%s", err.msg);
    sc_model *m = b.networks[0].model, *v;
    sc_model_config cfg = *sc_model_get_config(m);
    cfg.att_scaling = 1;
    cfg.att_residual = 0;
    int F, na, nv;
    const sc_field_info *fi = sc_schema_fields(b.schema, &F);
    cr_assert_eq(sc_model_create(&v, &cfg, fi, F, 1, &err), 0, "%s", err.msg);
    sc_param *pa = sc_model_params(m, &na), *pv = sc_model_params(v, &nv);
    cr_assert_eq(nv, na - cfg.att_layers, "one W_res less per layer");
    for (int j = 0; j < nv; j++)
        for (int i = 0; i < na; i++)
            if (!strcmp(pa[i].name, pv[j].name)) {
                cr_assert_eq(pa[i].size, pv[j].size);
                memcpy(pv[j].data, pa[i].data, sizeof(float) * (size_t)pa[i].size);
            }
    sc_model_free(m);
    b.networks[0].model = v;
    snprintf(path, sizeof path, "%s/autoint-scaled", dir);
    cr_assert_eq(sc_model_bundle_save(&b, path, &err), 0, "%s", err.msg);
    sc_model_bundle_free(&b);
}

Test(export_onnx, every_backbone_scores_as_semctr_in_onnx_runtime, .timeout = 900) {
    char d[64];
    prepare(d);
    static const char *bb[] = {"lr", "fm", "dnn", "widedeep", "deepfm", "dcn", "dcnv2", "autoint"};
    for (int i = 0; i < 8; i++) {
        /* att_dim != D / heads: layers of shape (D, A) then (A, A) */
        const char *extra = !strcmp(bb[i], "autoint") ? "--att-dim 4 --att-heads 3 --att-layers 2" : "";
        cr_assert_eq(tcli_semctr("train --data %s/data --model %s --out %s/%s --epochs 1 --max-steps 150 --seed 1 --threads 2 %s", d, bb[i],
                                 d, bb[i], extra),
                     0, "%s", tcli_out());
        export_and_compare(d, bb[i]);
    }
    autoint_options(d);
    export_and_compare(d, "autoint-scaled");
    cleanup(d);
}

Test(export_onnx, elec_vanilla_network_scores_as_semctr, .timeout = 600) {
    char d[64];
    prepare(d);
    /* short texts (genres, occupation) keep the encoder's work small under sanitizers */
    cr_assert_eq(tcli_semctr("train --method elec --elec-granularity entity --elec-text genres,occupation --elec-guard off --elec-folds 1 "
                             "--data %s/data --model deepfm --out %s/elec --epochs 1 --adapter-epochs 1 --seed 3 --threads 2",
                             d, d),
                 0, "%s", tcli_out());
    export_and_compare(d, "elec"); /* the default network: vanilla */
    /* the gain network needs the LLM's vectors: refused, naming the way out */
    cr_assert_eq(tcli_semctr("export --model %s/elec --format onnx --network gain --out %s/g.onnx", d, d), 1);
    cr_assert(strstr(tcli_out(), "language-model vectors") && strstr(tcli_out(), "--network vanilla"), "%s", tcli_out());
    char path[128];
    snprintf(path, sizeof path, "%s/g.onnx", d);
    cr_assert(!sc_file_exists(path), "a refused export left a file");
    cleanup(d);
}

/* Extraction files of stand-in texts (not LLM outputs), short and few so the encoder's work stays small. */
static void msd_texts(const char *dir) {
    static const char *kinds[] = {"a comedy", "a drama", "an action film", "a thriller", "a romance"};
    char path[256];
    snprintf(path, sizeof path, "%s/item.tsv", dir);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fprintf(f, "key\tstatus\ttext\n");
    for (int i = 1; i <= 1682; i++) fprintf(f, "%d\tok\tIt is %s.\n", i, kinds[i % 5]);
    fclose(f);
    snprintf(path, sizeof path, "%s/user.tsv", dir);
    f = fopen(path, "w");
    cr_assert(f);
    fprintf(f, "key\tstatus\ttext\n");
    for (int i = 1; i <= 943; i++) fprintf(f, "%d\tok\tLikes %s.\n", i, kinds[(i / 7) % 5]);
    fclose(f);
}

Test(export_onnx, msd_model_scores_as_semctr_with_its_tables, .timeout = 600) {
    char d[64], tx[128];
    prepare(d);
    snprintf(tx, sizeof tx, "%s/texts", d);
    cr_assert_eq(sc_mkdirs(tx, NULL), 0);
    msd_texts(tx);
    /* all three levels: the item and user tables and the frequency-weighted history fusion */
    cr_assert_eq(tcli_semctr("train --method msd --msd-levels item,user,fusion --msd-texts %s --data %s/data --model dcn "
                             "--out %s/msd --epochs 1 --seed 3 --threads 2",
                             tx, d, d),
                 0, "%s", tcli_out());
    export_and_compare(d, "msd");
    /* LR takes the semantic fields as a linear term (extra.lin.weight) */
    cr_assert_eq(tcli_semctr("train --method msd --msd-levels item,fusion --msd-texts %s --data %s/data --model lr "
                             "--out %s/msdlr --epochs 1 --seed 3 --threads 2",
                             tx, d, d),
                 0, "%s", tcli_out());
    export_and_compare(d, "msdlr");
    cleanup(d);
}

Test(export_onnx, raw_rows_encoded_with_the_lookup_files_score_as_predict, .timeout = 300) {
    char d[64], path[128];
    prepare(d);
    cr_assert_eq(tcli_semctr("train --data %s/data --model deepfm --out %s/m --epochs 1 --seed 1 --threads 2", d, d), 0, "%s",
                 tcli_out());
    cr_assert_eq(tcli_semctr("export --model %s/m --format onnx --out %s/m.onnx", d, d), 0, "%s", tcli_out());
    /* raw rows as a client sends them: known and unknown users and items, with and without a history */
    snprintf(path, sizeof path, "%s/rows.csv", d);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fprintf(f, "user_id,item_id,history\n1,1,\n2,50,242|302|377\n7,999999,1|2|3|no-such-item\nnobody,181,\n,,\n");
    char line[256];
    snprintf(line, sizeof line, "%s/ml-100k/u.data", getenv("SEMCTR_DATA") ? getenv("SEMCTR_DATA") : "../shared/data");
    FILE *in = fopen(line, "r");
    cr_assert(in, "%s", line);
    for (int i = 0; i < 500 && fgets(line, sizeof line, in); i++) {
        int u, it;
        cr_assert_eq(sscanf(line, "%d\t%d", &u, &it), 2);
        fprintf(f, "%d,%d,%d|%d\n", u, it, (it * 7) % 1700, (it * 13) % 1700);
    }
    fclose(in);
    fclose(f);
    cr_assert_eq(tcli_semctr("predict --model %s/m --input %s/rows.csv --output %s/p.csv", d, d, d), 0, "%s", tcli_out());
    /* the example script of docs/onnx.md, run as it is printed there */
    int rc = onnx_check("csv docs/onnx.md '%s/m.inputs.json' '%s/rows.csv' '%s/p.csv'", d, d, d);
    cr_assert_eq(rc, 0, "%s", tcli_out());
    cr_assert(strstr(tcli_out(), "rows 505"), "%s", tcli_out());
    cleanup(d);
}

/* A small click log whose fields use every encoding of the manifest:
 * vocabulary, hash, pattern, the three normalisations, buckets, log2, a
 * multi field split at ';', flag columns, a sequence, and fields joined
 * from an item table (categorical and numeric). */
static void mixed_dataset(const char *dir) {
    char path[256];
    snprintf(path, sizeof path, "%s/items.csv", dir);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fprintf(f, "item_id,brand,weight\n");
    for (int i = 0; i < 40; i++) fprintf(f, "i%d,b%d,%.2f\n", i, i % 6, 0.5 + (i * 37 % 100) / 10.0);
    fclose(f);
    snprintf(path, sizeof path, "%s/log.csv", dir);
    f = fopen(path, "w");
    cr_assert(f);
    fprintf(f, "ts,user_id,item_id,price,rating,views,age,clicks,tag,city,cats,f1,f2,f3,click\n");
    static const char *cats[] = {"a;b", "b", "c;a;d", "", "d;;e", "a;b;c;d"};
    uint32_t x = 12345;
    for (int r = 0; r < 1500; r++) {
        x = x * 1103515245u + 12345u;
        uint32_t h = x >> 8;
        int u = h % 30, it = (h / 30) % 40;
        /* clicks depend on user, item and a few fields, so training gives scores that differ */
        int click = ((u % 3 == 0) + (it % 4 == 0) + (h % 7 < 3) + ((h >> 5) % 2)) >= 2;
        fprintf(f, "%d,u%d,i%d,%.2f,%d,%d,%d,%d,t%d,%s-%d,%s,%d,%d,%d,%d\n", r, u, it, 10 + (h % 1000) / 10.0,
                (int)(h % 50), (int)(h % 5000), 15 + (int)(h % 60), (int)(h % 300), (int)(h % 80),
                h % 2 ? "paris" : "rome", (int)(h % 9), cats[h % 6], (int)(h % 2), (int)((h >> 3) % 2),
                (int)((h >> 4) % 2), click);
    }
    fclose(f);
    snprintf(path, sizeof path, "%s/c.yaml", dir);
    f = fopen(path, "w");
    cr_assert(f);
    fprintf(f, "input: {path: log.csv, header: true}\n"
               "label: click\n"
               "joins:\n  - {name: item, path: items.csv, header: true, key: item_id}\n"
               "fields:\n"
               "  - {name: user_id, type: categorical}\n"
               "  - {name: item_id, type: categorical}\n"
               "  - {name: brand, type: categorical}\n"
               "  - {name: weight, type: numeric, normalize: standard}\n"
               "  - {name: price, type: numeric, normalize: standard, fill: 50}\n"
               "  - {name: rating, type: numeric, normalize: minmax}\n"
               "  - {name: views, type: numeric, normalize: log}\n"
               "  - {name: age, type: numeric, buckets: [18, 30, 50]}\n"
               "  - {name: clicks, type: numeric, bucketize: log2}\n"
               "  - {name: tag, type: categorical, hash_buckets: 50}\n"
               "  - {name: city, type: categorical, pattern: '^([a-z]+)-'}\n"
               "  - {name: cats, type: multi, separator: ';', max_len: 3, pooling: sum}\n"
               "  - {name: flags, type: multi, flags: [f1, f2, f3], max_len: 2}\n"
               "  - {name: history, type: sequence, of: item_id, by: user_id, max_len: 4, share_embedding: item_id}\n"
               "split: {method: time, column: ts}\n");
    fclose(f);
    cr_assert_eq(tcli_semctr("prepare --config %s/c.yaml --out %s/data", dir, dir), 0, "%s", tcli_out());
}

Test(export_onnx, every_encoding_of_the_manifest_reproduces_predict, .timeout = 300) {
    char d[] = "/tmp/sc_onnx_XXXXXX", path[128];
    cr_assert(mkdtemp(d));
    mixed_dataset(d);
    cr_assert_eq(tcli_semctr("train --data %s/data --model deepfm --out %s/m --epochs 3 --lr 0.01 --seed 1 --threads 2", d,
                             d),
                 0, "%s", tcli_out());
    cr_assert_eq(tcli_semctr("export --model %s/m --format onnx --out %s/m.onnx", d, d), 0, "%s", tcli_out());
    /* the log's last rows with a history column, then cells a client may send: empty, unknown, not a
     * number, a city the pattern does not match, blank counts, too many categories */
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "awk -F, 'NR == 1 {print $0 \",history\"} NR > 1200 {print $0 \",i\" NR %% 40 \"|i\" (NR * 7) %% 45 \"|\"}' "
             "'%s/log.csv' > '%s/rows.csv'",
             d, d);
    cr_assert_eq(system(cmd), 0);
    snprintf(path, sizeof path, "%s/rows.csv", d);
    FILE *f = fopen(path, "a");
    cr_assert(f);
    fprintf(f, "1,,,,,,,,,,,,,,,\n"
               "2,u1,i999,abc,7,-3,12,x7,t999,lisbon,z;a;b;c;d,1,1,1,1,nope|i3\n"
               "3,u2,i5,12.5,60,100000,99, , ,oslo-1,;;,0,,1,0,i1|i2|i3|i4|i5|i6\n"
               "4,new,,1e3,0,0,18,3,,paris,,,,,0,\n");
    fclose(f);
    cr_assert_eq(tcli_semctr("predict --model %s/m --input %s/rows.csv --output %s/p.csv", d, d, d), 0, "%s", tcli_out());
    int rc = onnx_check("encode '%s/m.inputs.json' '%s/rows.csv' '%s/p.csv'", d, d, d);
    cr_assert_eq(rc, 0, "%s", tcli_out());
    cr_log_info("every encoding: %s", tcli_out());
    /* the manifest names each encoding once at least */
    char *man;
    size_t n;
    snprintf(path, sizeof path, "%s/m.inputs.json", d);
    cr_assert_eq(sc_read_file(path, &man, &n, NULL), SC_OK);
    static const char *enc[] = {"lookup", "split", "hash", "numeric", "bucket", "log2", "flags"};
    for (int i = 0; i < 7; i++) {
        char pat[64];
        snprintf(pat, sizeof pat, "\"encoding\":\t\"%s\"", enc[i]);
        cr_assert(strstr(man, pat), "no %s in %s", pat, man);
    }
    sc_free(man);
    cleanup(d);
}

Test(export_onnx, bad_requests_fail_with_a_clear_message, .timeout = 120) {
    char d[64];
    prepare(d);
    cr_assert_eq(tcli_semctr("train --data %s/data --model lr --out %s/m --epochs 1 --max-steps 5", d, d), 0, "%s",
                 tcli_out());
    cr_assert_eq(tcli_semctr("export --model %s/m --format tflite --out %s/x", d, d), 2);
    cr_assert(strstr(tcli_out(), "--format") && strstr(tcli_out(), "onnx"), "%s", tcli_out());
    cr_assert_eq(tcli_semctr("export --model %s/m --format onnx", d), 2);
    cr_assert(strstr(tcli_out(), "--out"), "%s", tcli_out());
    cr_assert_eq(tcli_semctr("export --model %s/m --format onnx --network gain --out %s/x.onnx", d, d), 1);
    cr_assert(strstr(tcli_out(), "no network 'gain'"), "%s", tcli_out());
    cr_assert_eq(tcli_semctr("export --model %s/m --format onnx --out %s/no/such/dir/x.onnx", d, d), 1);
    cr_assert(strstr(tcli_out(), "no/such/dir"), "%s", tcli_out());
    cr_assert_eq(tcli_semctr("export --model %s/missing --format onnx --out %s/x.onnx", d, d), 1);
    cr_assert(strstr(tcli_out(), "missing"), "%s", tcli_out());
    /* a field named like an output of the graph */
    char path[128];
    snprintf(path, sizeof path, "%s/log.csv", d);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fprintf(f, "ts,logit,click\n");
    for (int i = 0; i < 50; i++) fprintf(f, "%d,v%d,%d\n", i, i % 5, i % 2);
    fclose(f);
    snprintf(path, sizeof path, "%s/c.yaml", d);
    f = fopen(path, "w");
    cr_assert(f);
    fprintf(f, "input: {path: log.csv, header: true}\nlabel: click\nfields:\n  - {name: logit, type: categorical}\n"
               "split: {method: time, column: ts}\n");
    fclose(f);
    cr_assert_eq(tcli_semctr("prepare --config %s/c.yaml --out %s/clash", d, d), 0, "%s", tcli_out());
    cr_assert_eq(tcli_semctr("train --data %s/clash --model lr --out %s/c --epochs 1", d, d), 0, "%s", tcli_out());
    cr_assert_eq(tcli_semctr("export --model %s/c --format onnx --out %s/c.onnx", d, d), 1);
    cr_assert(strstr(tcli_out(), "field 'logit'") && strstr(tcli_out(), "rename"), "%s", tcli_out());
    cleanup(d);
}
