/* semctr export: write one network of a model file as a plain, servable
 * model (for ELEC: the vanilla network, which needs no language model). */
#include <stdio.h>

#include "cli/cli.h"
#include "train/modelfile.h"

static const char *USAGE =
    "usage: semctr export --model FILE --network NAME --out FILE\n"
    "\n"
    "Writes the network NAME of a model file (ELEC: vanilla or gain) as a plain\n"
    "model with the same schema, loadable by eval, predict and serve.\n";

int cmd_export(int argc, char **argv) {
    const char *in = NULL, *network = NULL, *out = NULL;
    const cli_opt opts[] = {
        CLI_STR("--model", &in),
        CLI_STR("--network", &network),
        CLI_STR("--out", &out),
    };
    int code = cli_parse("export", "option", USAGE, opts, CLI_N(opts), argc, argv);
    if (code != CLI_GO_ON) return code;
    if (!in || !network || !out) {
        fprintf(stderr, "semctr export: --model, --network and --out are required\n%s", USAGE);
        return EXIT_USAGE;
    }
    sc_error err = {0};
    sc_model_bundle b;
    int rc = sc_model_bundle_load(&b, in, 1, &err);
    if (rc) return cli_fail("export", &err);
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
