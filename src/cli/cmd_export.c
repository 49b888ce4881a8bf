/* semctr export: write one network of a model file as a plain, servable
 * model (for ELEC: the vanilla network, which needs no language model), or
 * as an ONNX graph with its input manifest (export/onnx.h). */
#include <stdio.h>

#include "cli/cli.h"
#include "export/onnx.h"
#include "train/modelfile.h"

static const char *USAGE =
    "usage: semctr export --model FILE --network NAME --out FILE\n"
    "       semctr export --model FILE --format onnx [--network NAME] --out FILE.onnx\n"
    "\n"
    "Writes the network NAME of a model file (ELEC: vanilla or gain) as a plain\n"
    "model with the same schema, loadable by eval, predict and serve.\n"
    "\n"
    "  --format F     semctr | onnx (semctr). onnx: an ONNX graph (opset 13) for ONNX\n"
    "                 Runtime / Triton, with FILE.inputs.json (input names, shapes and\n"
    "                 encodings) and FILE.vocab/ (lookup tables) beside it; any backbone,\n"
    "                 ELEC's vanilla network, MSD with its semantic tables; docs/onnx.md\n"
    "  --network NAME with --format onnx: default main, or vanilla for ELEC\n";

/* --format onnx: the graph, its manifest and lookup files. */
static int export_onnx(const sc_model_bundle *b, const char *in, const char *network, const char *out) {
    sc_error err = {0};
    sc_onnx_info info;
    if (sc_onnx_export(b, network, out, &info, &err)) return cli_fail("export", &err);
    fprintf(stderr, "wrote %s (%d nodes, %d initializers, %.1f MB) from network '%s' of %s\n", out, info.n_nodes,
            info.n_initializers, (double)info.bytes / 1e6, network ? network : sc_model_bundle_default_network(b), in);
    fprintf(stderr, "wrote %s (the %d inputs and how to encode them) and %s/\n", info.manifest, info.n_inputs,
            info.vocab_dir);
    return 0;
}

int cmd_export(int argc, char **argv) {
    const char *in = NULL, *network = NULL, *out = NULL, *format = "semctr";
    const cli_opt opts[] = {
        CLI_STR("--model", &in),
        CLI_STR("--network", &network),
        CLI_STR("--out", &out),
        CLI_STR("--format", &format),
    };
    int code = cli_parse("export", "option", USAGE, opts, CLI_N(opts), argc, argv);
    if (code != CLI_GO_ON) return code;
    static const char *const FORMATS[] = {"semctr", "onnx", NULL};
    int onnx;
    if (cli_choice("export", "--format", format, FORMATS, &onnx)) return EXIT_USAGE;
    if (!in || (!network && !onnx) || !out) {
        fprintf(stderr, "semctr export: --model, %s--out are required\n%s", onnx ? "" : "--network and ", USAGE);
        return EXIT_USAGE;
    }
    sc_error err = {0};
    sc_model_bundle b;
    int rc = sc_model_bundle_load(&b, in, 1, &err);
    if (rc) return cli_fail("export", &err);
    if (onnx) {
        code = export_onnx(&b, in, network, out);
        sc_model_bundle_free(&b);
        return code;
    }
    sc_model *m = sc_model_bundle_network(&b, network);
    if (!m) {
        sc_fail(&err, SC_ENOTFOUND, "%s has no network '%s' (it has:%s%s%s%s%s%s%s)", in, network,
                b.n_networks > 0 ? " " : "", b.n_networks > 0 ? b.networks[0].name : "",
                b.n_networks > 1 ? " " : "", b.n_networks > 1 ? b.networks[1].name : "",
                b.n_networks > 2 ? " " : "", b.n_networks > 2 ? b.networks[2].name : "", "");
        sc_model_bundle_free(&b);
        return cli_fail("export", &err);
    }
    if (sc_model_get_config(m)->extra_dim > 0) {
        sc_fail(&err, SC_EINVAL, "network '%s' of %s needs language-model vectors at scoring time; "
                "export the vanilla network for serving", network, in);
        sc_model_bundle_free(&b);
        return cli_fail("export", &err);
    }
    sc_model_bundle plain = {0};
    plain.schema = b.schema;
    snprintf(plain.method, sizeof plain.method, "plain");
    plain.n_networks = 1;
    snprintf(plain.networks[0].name, sizeof plain.networks[0].name, "main");
    plain.networks[0].model = m;
    plain.info = cJSON_CreateObject();
    cJSON_AddStringToObject(plain.info, "exported_from", in);
    cJSON_AddStringToObject(plain.info, "network", network);
    rc = sc_model_bundle_save(&plain, out, &err);
    cJSON_Delete(plain.info);
    sc_model_bundle_free(&b);
    if (rc) return cli_fail("export", &err);
    fprintf(stderr, "wrote network '%s' of %s to %s\n", network, in, out);
    return 0;
}
