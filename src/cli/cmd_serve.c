/* semctr serve: the HTTP scoring server (src/serve/server.h). This file
 * parses flags, handles signals (SIGHUP: reload; SIGTERM/SIGINT: graceful
 * stop) and runs the reload watch loop. */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    "                       (known items and users are always table lookups; docs/msd.md)\n"
    "  --max-body BYTES     larger request bodies get 413 (16777216)\n"
    "  --max-instances N    more rows in one request get 413 (10000)\n"
    "  --timeout S          close connections idle for S seconds (30)\n"
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
    const char *port_file = NULL, *v;
    double watch = 1, drain = 10;
    long x;
    int rc = 0;
    cli_args a = {argc, argv, 1};
    for (; a.i < argc && !rc; a.i++) {
        int r;
        if (cli_flag(&a, "--help") || cli_flag(&a, "-h")) {
            fputs(USAGE, stdout);
            return 0;
        }
        if (cli_flag(&a, "--ignore-unknown")) {
            cfg.ignore_unknown = 1;
        } else if ((r = cli_take(&a, "--model", &v)) == 1) {
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
        } else if (r == 0 && (r = cli_take(&a, "--model-dir", &v)) == 1) {
            if (add_dir(v, specs, owned, &n)) rc = EXIT_USAGE;
        } else if (r == 0 && (r = cli_take(&a, "--host", &v)) == 1) {
            cfg.host = v;
        } else if (r == 0 && (r = cli_take(&a, "--port", &v)) == 1) {
            if (cli_int("serve", "--port", v, 0, 65535, &x)) rc = EXIT_USAGE;
            cfg.port = (int)x;
        } else if (r == 0 && (r = cli_take(&a, "--port-file", &v)) == 1) {
            port_file = v;
        } else if (r == 0 && (r = cli_take(&a, "--threads", &v)) == 1) {
            if (cli_int("serve", "--threads", v, 1, 256, &x)) rc = EXIT_USAGE;
            cfg.threads = (int)x;
        } else if (r == 0 && (r = cli_take(&a, "--encoder", &v)) == 1) {
            cfg.encoder = v;
        } else if (r == 0 && (r = cli_take(&a, "--network", &v)) == 1) {
            cfg.network = v;
        } else if (r == 0 && (r = cli_take(&a, "--max-body", &v)) == 1) {
            if (cli_int("serve", "--max-body", v, 64, 1L << 31, &x)) rc = EXIT_USAGE;
            cfg.max_body = (size_t)x;
        } else if (r == 0 && (r = cli_take(&a, "--max-instances", &v)) == 1) {
            if (cli_int("serve", "--max-instances", v, 1, 1 << 24, &x)) rc = EXIT_USAGE;
            cfg.max_instances = (int)x;
        } else if (r == 0 && (r = cli_take(&a, "--timeout", &v)) == 1) {
            if (cli_int("serve", "--timeout", v, 1, 3600, &x)) rc = EXIT_USAGE;
            cfg.timeout_s = (int)x;
        } else if (r == 0 && (r = cli_take(&a, "--watch", &v)) == 1) {
            if (cli_float("serve", "--watch", v, &watch) || watch < 0) rc = EXIT_USAGE;
        } else if (r == 0 && (r = cli_take(&a, "--drain", &v)) == 1) {
            if (cli_float("serve", "--drain", v, &drain) || drain < 0) rc = EXIT_USAGE;
        } else {
            if (r == 0) fprintf(stderr, "semctr serve: unknown option '%s'\n%s", argv[a.i], USAGE);
            rc = EXIT_USAGE;
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
        fprintf(stderr, "semctr serve: listening on http://%s:%d (%d model%s)\n", strchr(cfg.host, ':') ? "[::]" : cfg.host,
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
