/* semctr serve: the HTTP scoring server (src/serve/server.h). This file
 * parses flags, handles signals (SIGHUP: reload; SIGTERM/SIGINT: graceful
 * stop) and runs the reload watch loop. */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "base/alloc.h"
#include "base/file.h"
#include "base/util.h"
#include "cli/cli.h"
#include "serve/server.h"

static const char *USAGE =
    "usage: semctr serve --model NAME=FILE [--model NAME2=FILE2 ...] [options]\n"
    "       semctr serve --model-dir DIR [options]\n"
    "\n"
    "Serves models over HTTP/1.1 (TensorFlow Serving REST shape; docs/serve.md):\n"
    "  POST /v1/models/NAME:predict   {\"instances\": [{...}, ...]} or {\"inputs\": {...}}\n"
    "  GET  /v1/models[/NAME]         status, version, schema\n"
    "  GET  /healthz, GET /metrics    liveness, Prometheus metrics\n"
    "\n"
    "  --model NAME=FILE    a model file to serve under NAME (repeatable)\n"
    "  --model-dir DIR      serve every DIR/*.model under its file name without .model\n"
    "  --host ADDR          address to listen on (127.0.0.1)\n"
    "  --port N             port (8501; 0 = any free port, see --port-file)\n"
    "  --port-file FILE     write the port there once listening\n"
    "  --threads N          HTTP worker threads = concurrent scoring contexts per model (all cores)\n"
    "  --network NAME       network of multi-network files (default: main, or vanilla for ELEC)\n"
    "  --encoder DIR        MSD models: encode a new item's \"item_text\" with this small encoder\n"
    "  --precision P        dense layers in f32 (default: the bits of `semctr predict`) or bf16\n"
    "                       (about twice as fast on AVX512_BF16 CPUs, within docs/serve.md's tolerance)\n"
    "                       (known items and users are always table lookups; docs/msd.md)\n"
    "  --max-body BYTES     larger request bodies get 413 (16777216)\n"
    "  --max-instances N    more rows in one request get 413 (10000)\n"
    "  --timeout S          close a request whose body is not all in S seconds after its head,\n"
    "                       or that stalls (no byte either way) for S seconds (30)\n"
    "  --idle-timeout S     close a connection that has not sent a whole request head S seconds\n"
    "                       after it opened or after its last response (10)\n"
    "  --max-connections N  open connections at most (1024)\n"
    "  --max-connections-per-ip N\n"
    "                       open connections from one address at most (256; 0 = no limit)\n"
    "  --ignore-unknown     drop columns the model does not read instead of answering 400\n"
    "  --watch S            check the model files for changes every S seconds (1; 0 = only on SIGHUP)\n"
    "  --drain S            on SIGTERM, wait up to S seconds for requests in flight (10)\n"
    "\n"
    "SIGHUP reloads every model; a replaced file is reloaded on its own (--watch). A\n"
    "file that fails to load or check leaves the old version serving (logged, /metrics).\n";

static volatile sig_atomic_t hup;
static void on_hup(int sig) {
    (void)sig;
    hup = 1;
}

#define MAX_SPECS SC_SERVER_MAX_MODELS

static int add_dir(const char *dir, sc_model_spec *specs, char **owned, int *n) {
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "semctr serve: cannot open --model-dir %s\n", dir);
        return -1;
    }
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l <= 6 || strcmp(e->d_name + l - 6, ".model")) continue;
        if (*n >= MAX_SPECS) {
            fprintf(stderr, "semctr serve: more than %d models\n", MAX_SPECS);
            closedir(d);
            return -1;
        }
        size_t cap = strlen(dir) + l + 2;
        char *path = sc_malloc(cap), *name = sc_malloc(l);
        if (!path || !name) {
            closedir(d);
            sc_free(path);
            sc_free(name);
            return -1;
        }
        snprintf(path, cap, "%s/%s", dir, e->d_name);
        memcpy(name, e->d_name, l - 6);
        name[l - 6] = '\0';
        owned[2 * *n] = path;
        owned[2 * *n + 1] = name;
        specs[*n] = (sc_model_spec){name, path};
        (*n)++;
        found++;
    }
    closedir(d);
    if (!found) fprintf(stderr, "semctr serve: no *.model file in %s\n", dir);
    return found ? 0 : -1;
}

int cmd_serve(int argc, char **argv) {
    sc_model_spec specs[MAX_SPECS];
    char *owned[2 * MAX_SPECS] = {0};
    int n = 0;
    sc_server_config cfg = {0};
    cfg.host = "127.0.0.1";
    cfg.port = 8501;
    const char *port_file = NULL, *precision = "f32";
    double watch = 1, drain = 10;
    long port = cfg.port, threads = 0, max_body = 0, max_instances = 0, timeout = 0, idle_timeout = 10,
         max_conn = 1024, max_per_ip = 256;
    cli_list models = {0}; /* --model and --model-dir, in order */
    const cli_opt opts[] = {
        CLI_FLAG("--ignore-unknown", &cfg.ignore_unknown),
        CLI_LIST("--model", &models),
        CLI_LIST("--model-dir", &models),
        CLI_STR("--host", &cfg.host),
        CLI_INT("--port", &port, 0, 65535),
        CLI_STR("--port-file", &port_file),
        CLI_INT("--threads", &threads, 1, 256),
        CLI_STR("--encoder", &cfg.encoder),
        CLI_STR("--precision", &precision),
        CLI_STR("--network", &cfg.network),
        CLI_INT("--max-body", &max_body, 64, 1L << 31),
        CLI_INT("--max-instances", &max_instances, 1, 1 << 24),
        CLI_INT("--timeout", &timeout, 1, 3600),
        CLI_INT("--idle-timeout", &idle_timeout, 1, 3600),
        CLI_INT("--max-connections", &max_conn, 1, 1 << 20),
        CLI_INT("--max-connections-per-ip", &max_per_ip, 0, 1 << 20),
        CLI_FLOAT("--watch", &watch),
        CLI_FLOAT("--drain", &drain),
    };
    int code = cli_parse("serve", "option", USAGE, opts, CLI_N(opts), argc, argv);
    if (code != CLI_GO_ON) return code;
    if (!(watch >= 0) || !(drain >= 0)) { /* NaN too */
        fprintf(stderr, "semctr serve: %s %g: give a number of seconds, 0 or more\n", !(watch >= 0) ? "--watch" : "--drain",
                !(watch >= 0) ? watch : drain);
        return EXIT_USAGE;
    }
    if (strcmp(precision, "f32") && strcmp(precision, "bf16")) {
        fprintf(stderr, "semctr serve: --precision %s: give f32 or bf16\n", precision);
        return EXIT_USAGE;
    }
    cfg.bf16 = !strcmp(precision, "bf16");
    cfg.port = (int)port;
    cfg.threads = (int)threads;
    cfg.max_body = (size_t)max_body;
    cfg.max_instances = (int)max_instances;
    cfg.timeout_s = (int)timeout;
    cfg.idle_timeout_s = (int)idle_timeout;
    cfg.max_connections = (int)max_conn;
    cfg.max_per_ip = max_per_ip ? (int)max_per_ip : -1;
    int rc = 0;
    for (int i = 0; i < models.n && i < CLI_LIST_MAX && !rc; i++) {
        const char *v = models.val[i];
        if (!strcmp(models.opt[i], "--model-dir")) {
            if (add_dir(v, specs, owned, &n)) rc = EXIT_USAGE;
            continue;
        }
        const char *eq = strchr(v, '=');
        if (!eq || eq == v || !eq[1]) {
            fprintf(stderr, "semctr serve: --model takes NAME=FILE, got '%s'\n", v);
            rc = EXIT_USAGE;
        } else if (n >= MAX_SPECS) {
            fprintf(stderr, "semctr serve: more than %d models\n", MAX_SPECS);
            rc = EXIT_USAGE;
        } else {
            size_t l = (size_t)(eq - v);
            char *name = sc_malloc(l + 1);
            if (!name) return 1;
            memcpy(name, v, l);
            name[l] = '\0';
            owned[2 * n + 1] = name;
            specs[n++] = (sc_model_spec){name, eq + 1};
        }
    }
    if (!rc && n == 0) {
        fprintf(stderr, "semctr serve: give at least one --model NAME=FILE or --model-dir DIR\n%s", USAGE);
        rc = EXIT_USAGE;
    }
    sc_server *srv = NULL;
    sc_error err = {0};
    if (!rc) {
        cfg.n_models = n;
        cfg.models = specs;
        /* Writes to a client that went away must not kill the server. */
        signal(SIGPIPE, SIG_IGN);
        /* Each connection is a descriptor: take the hard limit, not the (often 1024) soft one. */
        struct rlimit nofile;
        if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
            nofile.rlim_cur = nofile.rlim_max;
            setrlimit(RLIMIT_NOFILE, &nofile);
        }
        if (sc_server_start(&srv, &cfg, &err)) rc = cli_fail("serve", &err);
    }
    if (!rc && port_file) {
        sc_atomic_file f;
        if (sc_atomic_open(&f, port_file, &err) == 0) {
            fprintf(f.fp, "%d\n", sc_server_port(srv));
            if (sc_atomic_commit(&f, &err)) rc = cli_fail("serve", &err);
        } else {
            rc = cli_fail("serve", &err);
        }
    }
    if (!rc) {
        sc_install_signal_handlers();
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_hup;
        sigaction(SIGHUP, &sa, NULL);
        int v6 = strchr(cfg.host, ':') != NULL; /* an IPv6 address goes in brackets in a URL */
        fprintf(stderr, "semctr serve: listening on http://%s%s%s:%d (%d model%s)\n", v6 ? "[" : "", cfg.host, v6 ? "]" : "",
                sc_server_port(srv), n, n == 1 ? "" : "s");
        double last = sc_now();
        while (!sc_interrupted()) {
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
            if (hup) {
                hup = 0;
                sc_info("serve: SIGHUP: reloading every model");
                sc_server_check_reload(srv, 1);
                last = sc_now();
            } else if (watch > 0 && sc_now() - last >= watch) {
                sc_server_check_reload(srv, 0);
                last = sc_now();
            }
        }
        fprintf(stderr, "semctr serve: stopping (finishing requests in flight, at most %.0f s)\n", drain);
    }
    sc_server_stop(srv, drain);
    for (int i = 0; i < 2 * MAX_SPECS; i++) sc_free(owned[i]);
    if (!rc) fprintf(stderr, "semctr serve: stopped\n");
    return rc;
}
