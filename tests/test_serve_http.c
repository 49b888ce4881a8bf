/* The real server (`semctr serve`) on a loopback port, spoken to with curl:
 * scoring in both request shapes equal to the C API, every endpoint, every
 * refusal (JSON error body, 4xx, counted in /metrics), slow clients, hot
 * reload under concurrent load with zero failed requests, a corrupt
 * replacement that leaves the old model serving, graceful SIGTERM. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include "semctr.h"
#include "test_serve_fixture.h"

typedef struct server {
    pid_t pid;
    int port;
    char dir[700]; /* private working directory: the served model copy, port file, log */
} server;

static void msleep(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Start `semctr serve` on a free port with the model copied to dir/m.model. */
static void start(server *s, const char *model, const char *extra) {
    snprintf(s->dir, sizeof s->dir, "%s/srv.%d.%ld", fx_dir(), (int)getpid(), (long)random());
    cr_assert_eq(fx_sh("mkdir -p '%s' && cp '%s/%s' '%s/m.model'", s->dir, fx_dir(), model, s->dir), 0);
    char port_file[800], log[800], mpath[800];
    snprintf(port_file, sizeof port_file, "%s/port", s->dir);
    snprintf(log, sizeof log, "%s/log", s->dir);
    snprintf(mpath, sizeof mpath, "m=%s/m.model", s->dir);
    s->pid = fork();
    cr_assert_neq(s->pid, -1);
    if (s->pid == 0) {
        freopen(log, "w", stderr);
        freopen("/dev/null", "w", stdout);
        char *argv[32];
        int n = 0;
        argv[n++] = (char *)fx_bin();
        argv[n++] = "serve";
        argv[n++] = "--model";
        argv[n++] = mpath;
        argv[n++] = "--port";
        argv[n++] = "0";
        argv[n++] = "--port-file";
        argv[n++] = port_file;
        argv[n++] = "--threads";
        argv[n++] = "4";
        argv[n++] = "--watch";
        argv[n++] = "0.1";
        char ex[512];
        snprintf(ex, sizeof ex, "%s", extra ? extra : "");
        for (char *save = NULL, *t = strtok_r(ex, " ", &save); t && n < 30; t = strtok_r(NULL, " ", &save)) argv[n++] = t;
        argv[n] = NULL;
        execv(argv[0], argv);
        _exit(127);
    }
    /* ready when the port file exists (written after listen) */
    for (int i = 0; i < 300; i++) {
        FILE *f = fopen(port_file, "r");
        if (f) {
            int ok = fscanf(f, "%d", &s->port) == 1;
            fclose(f);
            if (ok) return;
        }
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            s->pid = 0;
            fx_sh("cat '%s' >&2", log);
            cr_assert_fail("the server exited before listening");
        }
        msleep(50);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    cr_assert_fail("the server did not listen within 15 s");
}

/* SIGTERM, and the exit status (killed after 10 s). */
static int stop(server *s) {
    if (s->pid <= 0) return -1;
    kill(s->pid, SIGTERM);
    int st = 0;
    for (int i = 0; i < 200; i++) {
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            s->pid = 0;
            fx_sh("rm -rf '%s'", s->dir);
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        msleep(50);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
    return -2;
}

/* curl: body into out (static-size buffer), returns the HTTP code. */
static int http(server *s, const char *method, const char *path, const char *body, char *out, size_t cap) {
    char bodyfile[800] = "";
    if (body) {
        snprintf(bodyfile, sizeof bodyfile, "%s/body.%ld", s->dir, (long)random());
        FILE *f = fopen(bodyfile, "w");
        cr_assert(f);
        fputs(body, f);
        fclose(f);
    }
    char cmd[2400];
    snprintf(cmd, sizeof cmd, "curl -s -m 20 -X %s %s%s%s -w '\\n%%{http_code}' 'http://127.0.0.1:%d%s'", method,
             body ? "-H 'Content-Type: application/json' --data-binary @'" : "", body ? bodyfile : "", body ? "'" : "",
             s->port, path);
    FILE *p = popen(cmd, "r");
    cr_assert(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    pclose(p);
    if (body) unlink(bodyfile);
    char *nl = strrchr(out, '\n');
    cr_assert(nl, "no status from curl: %s", out);
    int code = atoi(nl + 1);
    *nl = '\0';
    return code;
}

static double metric(server *s, const char *name) {
    static char buf[1 << 16];
    cr_assert_eq(http(s, "GET", "/metrics", NULL, buf, sizeof buf), 200);
    char *p = strstr(buf, name);
    cr_assert(p, "metric %s absent", name);
    return atof(p + strlen(name));
}

static void api_scores(const char *model, int n, const char *const *cols, int ncol, const char *const *cells, float *p) {
    char path[800];
    snprintf(path, sizeof path, "%s/%s", fx_dir(), model);
    semctr_model *m;
    semctr_error err;
    cr_assert_eq(semctr_load(&m, path, NULL, &err), 0, "%s", err.message);
    cr_assert_eq(semctr_score(m, n, ncol, cols, cells, p, &err), 0, "%s", err.message);
    semctr_free(m);
}

static void parse_predictions(const char *body, float *p, int n) {
    const char *q = strstr(body, "\"predictions\":[");
    cr_assert(q, "%s", body);
    q += 15;
    for (int i = 0; i < n; i++) {
        char *end;
        p[i] = strtof(q, &end);
        cr_assert(end != q, "prediction %d missing in %s", i, body);
        q = end + 1;
    }
}

static const char *ROWS = "{\"instances\": [{\"user_id\": \"196\", \"item_id\": \"242\"}, {\"user_id\": 186, \"item_id\": 302},"
                          " {\"user_id\": \"22\", \"item_id\": \"377\", \"rating\": null}]}";

Test(serve_http, endpoints_and_scores) {
    server s;
    start(&s, "a.model", NULL);
    static char out[1 << 16];
    cr_assert_eq(http(&s, "POST", "/v1/models/m:predict", ROWS, out, sizeof out), 200, "%s", out);
    float got[3], cols_got[3], want[3];
    parse_predictions(out, got, 3);
    const char *cols[] = {"user_id", "item_id"}, *cells[] = {"196", "242", "186", "302", "22", "377"};
    api_scores("a.model", 3, cols, 2, cells, want);
    for (int i = 0; i < 3; i++) cr_assert_float_eq(got[i], want[i], 1e-7, "row %d: http %g api %g", i, got[i], want[i]);
    cr_assert_eq(http(&s, "POST", "/v1/models/m:predict",
                      "{\"inputs\": {\"user_id\": [\"196\", 186, \"22\"], \"item_id\": [242, \"302\", 377]}}", out,
                      sizeof out), 200, "%s", out);
    parse_predictions(out, cols_got, 3);
    for (int i = 0; i < 3; i++) cr_assert_eq(cols_got[i], got[i]);
    cr_assert_eq(http(&s, "GET", "/v1/models/m", NULL, out, sizeof out), 200);
    cr_assert(strstr(out, "\"state\":\"AVAILABLE\"") && strstr(out, "\"backbone\":\"deepfm\"") &&
              strstr(out, "\"input_columns\":[") && strstr(out, "\"version\":1"), "%s", out);
    cr_assert_eq(http(&s, "GET", "/v1/models", NULL, out, sizeof out), 200);
    cr_assert(strstr(out, "\"name\":\"m\""), "%s", out);
    cr_assert_eq(http(&s, "GET", "/healthz", NULL, out, sizeof out), 200);
    cr_assert(strstr(out, "ok"));
    /* keep-alive: curl reuses one connection for two requests */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "curl -s -o /dev/null -o /dev/null -w '%%{num_connects} ' http://127.0.0.1:%d/healthz http://127.0.0.1:%d/healthz", s.port, s.port);
    FILE *p = popen(cmd, "r");
    char nc[64] = "";
    cr_assert(fgets(nc, sizeof nc, p));
    pclose(p);
    cr_assert_str_eq(nc, "1 0 ", "connections per request: %s", nc);
    cr_assert_eq(metric(&s, "semctr_instances_scored_total{model=\"m\"} "), 6);
    cr_assert_eq(metric(&s, "semctr_requests_total{endpoint=\"predict\",code=\"200\"} "), 2);
    cr_assert_eq(metric(&s, "semctr_request_duration_seconds_count{model=\"m\"} "), 2);
    cr_assert_eq(metric(&s, "semctr_model_version{model=\"m\"} "), 1);
    cr_assert_eq(stop(&s), 0);
}

static void expect_error(server *s, const char *method, const char *path, const char *body, int code, const char *kind,
                         const char *where) {
    static char out[1 << 16];
    int got = http(s, method, path, body, out, sizeof out);
    cr_assert_eq(got, code, "%s %s: %d, expected %d: %s", method, path, got, code, out);
    char k[128];
    snprintf(k, sizeof k, "\"kind\":\"%s\"", kind);
    cr_assert(strstr(out, "\"error\":") && strstr(out, k), "%s", out);
    cr_assert(strstr(out, where), "'%s' lacks '%s'", out, where);
}

Test(serve_http, bad_requests_are_refused_and_counted) {
    server s;
    start(&s, "a.model", "--max-body 4000 --max-instances 20 --timeout 1");
    expect_error(&s, "POST", "/v1/models/m:predict", "{\"instances\": [{\"user_id\": ", 400, "bad_json", "byte");
    expect_error(&s, "POST", "/v1/models/m:predict", "{\"instances\": [{\"user_id\": true}]}", 400, "bad_type",
                 "instances[0].user_id");
    expect_error(&s, "POST", "/v1/models/m:predict", "{\"instances\": [{\"colour\": \"red\"}]}", 400, "unknown_field",
                 "colour");
    expect_error(&s, "POST", "/v1/models/m:predict", "{\"instances\": []}", 400, "empty", "no instances");
    expect_error(&s, "POST", "/v1/models/nope:predict", ROWS, 404, "not_found", "nope");
    expect_error(&s, "GET", "/v1/models/m:predict", NULL, 405, "method_not_allowed", "POST");
    expect_error(&s, "POST", "/v1/models/m:explain", ROWS, 404, "not_found", "explain");
    expect_error(&s, "GET", "/nothing/here", NULL, 404, "not_found", "/nothing/here");
    char big[6000];
    strcpy(big, "{\"instances\": [");
    for (int i = 0; i < 21; i++) strcat(big, i ? ",{\"user_id\":\"1\"}" : "{\"user_id\":\"1\"}");
    strcat(big, "]}");
    expect_error(&s, "POST", "/v1/models/m:predict", big, 413, "too_many_instances", "limit is 20");
    while (strlen(big) < 5000) strcat(big, "                                        ");
    expect_error(&s, "POST", "/v1/models/m:predict", big, 413, "body_too_large", "4000");
    /* a slow client: headers never finished; the server drops it after --timeout */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)s.port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    const char *partial = "POST /v1/models/m:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"inst";
    cr_assert_eq(write(fd, partial, strlen(partial)), (ssize_t)strlen(partial));
    char c;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    cr_assert_leq(read(fd, &c, 1), 0, "the server should close a stalled connection");
    close(fd);
    /* unharmed: still scores, and every refusal is counted */
    static char out[1 << 16];
    cr_assert_eq(http(&s, "POST", "/v1/models/m:predict", ROWS, out, sizeof out), 200, "%s", out);
    cr_assert_eq(metric(&s, "semctr_request_errors_total{kind=\"bad_json\"} "), 1);
    cr_assert_eq(metric(&s, "semctr_request_errors_total{kind=\"bad_type\"} "), 1);
    cr_assert_eq(metric(&s, "semctr_request_errors_total{kind=\"unknown_field\"} "), 1);
    cr_assert_eq(metric(&s, "semctr_request_errors_total{kind=\"not_found\"} "), 3);
    cr_assert_eq(metric(&s, "semctr_request_errors_total{kind=\"body_too_large\"} "), 1);
    cr_assert_eq(metric(&s, "semctr_request_errors_total{kind=\"too_many_instances\"} "), 1);
    cr_assert_geq(metric(&s, "semctr_request_errors_total{kind=\"timeout\"} "), 1);
    cr_assert_eq(metric(&s, "semctr_requests_total{endpoint=\"predict\",code=\"400\"} "), 4);
    cr_assert_eq(stop(&s), 0);
}

Test(serve_http, hot_reload_under_load) {
    server s;
    start(&s, "a.model", NULL);
    const char *cols[] = {"user_id", "item_id"}, *cells[] = {"196", "242"};
    float pa, pb, got;
    api_scores("a.model", 1, cols, 2, cells, &pa);
    api_scores("b.model", 1, cols, 2, cells, &pb);
    cr_assert_neq(pa, pb, "the two fixture models must differ");
    /* four clients, each with its own keep-alive connection, 1.5 s of requests
     * while the file is replaced twice (a good file, then a corrupt one) */
    char fails[800];
    snprintf(fails, sizeof fails, "%s/fails", s.dir);
    char cmd[3000];
    snprintf(cmd, sizeof cmd,
             "cd '%s'; printf '%%s' '{\"instances\":[{\"user_id\":\"196\",\"item_id\":\"242\"}]}' > req.json; "
             "for c in 1 2 3 4; do (end=$(( $(date +%%s%%N) + 2500000000 )); n=0; "
             "while [ $(date +%%s%%N) -lt $end ]; do "
             "  out=$(curl -s -m 10 -w ' %%{http_code}' -H 'Content-Type: application/json' --data-binary @req.json "
             "        http://127.0.0.1:%d/v1/models/m:predict http://127.0.0.1:%d/v1/models/m:predict "
             "        http://127.0.0.1:%d/v1/models/m:predict); "
             "  case \"$out\" in *predictions*' 200'*predictions*' 200'*predictions*' 200') n=$((n+3));; *) echo \"$out\" >> fails;; esac; "
             "done; echo $n > ok.$c) & done; "
             "sleep 0.6; cp '%s/b.model' new.model && mv new.model m.model; sleep 0.9; "
             "head -c 5000 '%s/b.model' > bad.model && mv bad.model m.model; wait",
             s.dir, s.port, s.port, s.port, fx_dir(), fx_dir());
    cr_assert_eq(fx_sh("%s", cmd), 0);
    cr_assert_eq(fx_sh("test ! -s '%s'", fails), 0, "failed requests during reload (see %s)", fails);
    long total = 0;
    for (int c = 1; c <= 4; c++) {
        char okf[800];
        snprintf(okf, sizeof okf, "%s/ok.%d", s.dir, c);
        FILE *f = fopen(okf, "r");
        cr_assert(f);
        long n = 0;
        cr_assert_eq(fscanf(f, "%ld", &n), 1);
        fclose(f);
        total += n;
    }
    cr_assert_gt(total, 20, "too few requests under load: %ld", total);
    msleep(400); /* let the watcher see the corrupt file */
    /* the good file swapped in (version 2); the corrupt one refused, reported */
    cr_assert_eq(metric(&s, "semctr_model_version{model=\"m\"} "), 2);
    cr_assert_eq(metric(&s, "semctr_model_reload_failed{model=\"m\"} "), 1);
    cr_assert_eq(metric(&s, "semctr_model_reloads_total{model=\"m\",result=\"failure\"} "), 1);
    cr_assert_eq(metric(&s, "semctr_model_reloads_total{model=\"m\",result=\"success\"} "), 1);
    static char out[1 << 16];
    cr_assert_eq(http(&s, "GET", "/v1/models/m", NULL, out, sizeof out), 200);
    cr_assert(strstr(out, "\"failed\":true"), "%s", out);
    cr_assert_eq(http(&s, "POST", "/v1/models/m:predict", "{\"instances\":[{\"user_id\":\"196\",\"item_id\":\"242\"}]}",
                      out, sizeof out), 200);
    parse_predictions(out, &got, 1);
    cr_assert_float_eq(got, pb, 1e-7, "after reload: %g, model b gives %g", got, pb);
    char log[800];
    snprintf(log, sizeof log, "%s/log", s.dir);
    cr_assert_eq(fx_sh("grep -q 'reload of .* failed, version 2 keeps serving' '%s'", log), 0, "not logged");
    /* SIGHUP with the corrupt file still there: retried, still refused */
    kill(s.pid, SIGHUP);
    msleep(500);
    cr_assert_eq(metric(&s, "semctr_model_reloads_total{model=\"m\",result=\"failure\"} "), 2);
    cr_assert_eq(metric(&s, "semctr_model_version{model=\"m\"} "), 2);
    cr_assert_eq(stop(&s), 0);
}

Test(serve_http, refuses_to_start_on_a_bad_model) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "'%s' serve --model m=/nonexistent.model --port 0 2>&1 | grep -q nonexistent.model", fx_bin());
    cr_assert_eq(fx_sh("%s", cmd), 0);
    snprintf(cmd, sizeof cmd, "'%s' serve --model 'bad name=%s/a.model' --port 0 2>&1 | grep -q 'model name'", fx_bin(), fx_dir());
    cr_assert_eq(fx_sh("%s", cmd), 0);
    snprintf(cmd, sizeof cmd, "'%s' serve --model m=%s/a.model --network gain --port 0 2>&1 | grep -q \"no network 'gain'\"", fx_bin(), fx_dir());
    cr_assert_eq(fx_sh("%s", cmd), 0);
}
