/* Training throughput of the CTR backbones on Criteo-shaped random data
 * (13 numeric + 26 categorical fields, D=16, batch 4096), forward + backward
 * + Adam, as DeepCTR-Torch's fit() step does. Writes one line per backbone to
 * stdout and to bench/results_kernels.txt.
 *
 *   make BUILD=build && cc -O2 -march=native -std=c11 -D_GNU_SOURCE -Isrc \
 *     bench/bench_kernels.c build/libsemctr.a -lopenblas -lm -lpthread -o build/bench_kernels
 *   build/bench_kernels [threads] [steps]
 *   python3 bench/bench_deepctr.py [threads] [steps]   # the DeepCTR-Torch side */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/util.h"
#include "ctr/model.h"
#include "nn/layers.h"
#include "nn/optim.h"

enum { NNUM = 13, NCAT = 26, NF = NNUM + NCAT, B = 4096, VOCAB = 100000 };

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2, steps = argc > 2 ? atoi(argv[2]) : 20;
    sc_field_info f[NF];
    memset(f, 0, sizeof f);
    for (int i = 0; i < NF; i++) {
        snprintf(f[i].name, sizeof f[i].name, i < NNUM ? "I%d" : "C%d", i < NNUM ? i + 1 : i - NNUM + 1);
        f[i].kind = i < NNUM ? SC_FIELD_NUMERIC : SC_FIELD_CATEGORICAL;
        f[i].width = 1;
        f[i].vocab_size = i < NNUM ? 1 : VOCAB;
        f[i].share_with = -1;
    }
    sc_rng r;
    sc_rng_seed(&r, 1);
    int32_t *ids[NF] = {0};
    float *vals[NF] = {0}, *label = malloc(sizeof(float) * B);
    for (int i = 0; i < NF; i++) {
        if (i < NNUM) {
            vals[i] = malloc(sizeof(float) * B);
            for (int b = 0; b < B; b++) vals[i][b] = (float)sc_rng_uniform(&r);
        } else {
            ids[i] = malloc(sizeof(int32_t) * B);
            /* skewed ids, as real categorical data */
            for (int b = 0; b < B; b++) {
                double u = sc_rng_uniform(&r);
                ids[i][b] = 2 + (int32_t)((VOCAB - 2) * u * u * u);
            }
        }
    }
    for (int b = 0; b < B; b++) label[b] = (float)(sc_rng_uniform(&r) < 0.25);
    sc_batch batch = {.n = B, .cap = B, .n_fields = NF, .label = label, .ids = ids, .values = vals};
    FILE *out = fopen("bench/results_kernels.txt", "a");
    sc_backbone bbs[] = {SC_BB_DEEPFM, SC_BB_DCNV2, SC_BB_DCN, SC_BB_AUTOINT, SC_BB_WIDEDEEP};
    int towers[2][3] = {{256, 128, 0}, {400, 400, 400}};
    for (int tw = 0; tw < 2; tw++)
        for (size_t k = 0; k < sizeof bbs / sizeof bbs[0]; k++) {
            sc_model_config cfg;
            sc_model_config_default(&cfg, bbs[k]);
            cfg.n_hidden = tw == 0 ? 2 : 3;
            for (int l = 0; l < cfg.n_hidden; l++) cfg.hidden[l] = towers[tw][l];
            cfg.n_threads = threads;
            sc_model *m;
            sc_error err;
            if (sc_model_create(&m, &cfg, f, NF, 1, &err)) {
                fprintf(stderr, "%s\n", err.msg);
                return 1;
            }
            int np;
            sc_param *P = sc_model_params(m, &np);
            sc_optim_config oc;
            sc_optim_config_default(&oc, SC_OPTIM_ADAM);
            oc.n_threads = threads;
            sc_optim *o;
            sc_optim_create(&o, &oc, P, np, &err);
            float *lg = malloc(sizeof(float) * B), *dl = malloc(sizeof(float) * B);
            double t0 = 0, tf = 0, loss = 0;
            for (int s = 0; s < steps + 2; s++) {
                if (s == 2) t0 = sc_now(); /* warm-up: allocation, page faults */
                double a = sc_now();
                sc_model_forward(m, &batch, 1, lg, &err);
                if (s >= 2) tf += sc_now() - a;
                loss = sc_bce_logits_forward(lg, label, B);
                sc_bce_logits_backward(dl, lg, label, B, 1.0f);
                sc_model_backward(m, &batch, dl, NULL, NULL, &err);
                sc_optim_step(o, 1e-3f, &err);
            }
            double dt = sc_now() - t0;
            double fl = sc_model_flops_per_sample(m);
            char line[256];
            snprintf(line, sizeof line,
                     "%-8s dnn=%s threads=%d batch=%d: %.0f samples/s train, forward %.0f samples/s, "
                     "%.1f GFLOP/s (fwd+bwd ~3x fwd), loss %.4f\n",
                     sc_backbone_name(bbs[k]), tw == 0 ? "256-128" : "400-400-400", threads, B,
                     steps * (double)B / dt, steps * (double)B / tf, 3 * fl * steps * B / dt / 1e9,
                     loss);
            fputs(line, stdout);
            if (out) fputs(line, out);
            free(lg);
            free(dl);
            sc_optim_free(o);
            sc_model_free(m);
        }
    if (out) fclose(out);
    return 0;
}
