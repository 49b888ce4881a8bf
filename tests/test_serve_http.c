/* The real server (`semctr serve`) on a loopback port, spoken to with curl:
 * scoring in both request shapes equal to the C API, every endpoint, every
 * refusal (JSON error body, 4xx, counted in /metrics), slow clients, hot
 * reload under concurrent load with zero failed requests, a corrupt or
 * edited replacement that leaves the old model serving, graceful SIGTERM;
 * and under attack: hostile bodies in bounded memory (the server's RSS),
 * crowds of idle and slow-loris connections that never lock a new client
 * out, a model that scores NaN, bytes that are not UTF-8. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include "semctr.h"
#include "test_serve_fixture.h"
#include "train/modelfile.h"

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
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed assertion ends the test process: the server goes too */
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

/* curl from the local address iface (NULL: any): body into out (a
 * static-size buffer), returns the HTTP code. */
static int http_from(server *s, const char *iface, const char *method, const char *path, const char *body, char *out,
                     size_t cap) {
    char bodyfile[800] = "";
    if (body) {
        snprintf(bodyfile, sizeof bodyfile, "%s/body.%ld", s->dir, (long)random());
        FILE *f = fopen(bodyfile, "w");
        cr_assert(f);
        fputs(body, f);
        fclose(f);
    }
    char cmd[2400];
    snprintf(cmd, sizeof cmd, "curl -s -m 20 %s%s -X %s %s%s%s -w '\\n%%{http_code}' 'http://127.0.0.1:%d%s'",
             iface ? "--interface " : "", iface ? iface : "", method,
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

static int http(server *s, const char *method, const char *path, const char *body, char *out, size_t cap) {
    return http_from(s, NULL, method, path, body, out, cap);
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

/* ---- under attack ---- */

/* Wait up to 5 s for a counter to reach at least v; returns its value. */
static double metric_reaches(server *s, const char *name, double v) {
    double got = metric(s, name);
    for (int i = 0; i < 50 && got < v; i++) {
        msleep(100);
        got = metric(s, name);
    }
    return got;
}

/* kB of VmRSS or VmHWM (the peak) of a process. */
static long status_kb(pid_t pid, const char *key) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    cr_assert(f, "%s", path);
    long v = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, strlen(key))) v = atol(line + strlen(key) + 1);
    fclose(f);
    cr_assert_geq(v, 0, "%s: no %s", path, key);
    return v;
}

/* A request body of about 16 MB: head, then item repeated with commas
 * until the file holds 16,000,000 bytes, then tail. */
static void big_body(const char *path, const char *head, const char *item, const char *tail) {
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs(head, f);
    size_t n = strlen(head) + strlen(tail), step = strlen(item) + 1;
    for (long i = 0; n + step < 16000000; i++, n += step) fprintf(f, "%s%s", i ? "," : "", item);
    fputs(tail, f);
    fclose(f);
}

/* Four hostile bodies at once under the default --max-body (16 MiB): 5.3M
 * empty rows, and one 8M-element array in a cell. A parser that builds the
 * document first took ~700 MB per request and kept 1.45 GB after four; here
 * a request costs about its body, and the memory goes back when it ends. */
Test(serve_http, hostile_bodies_take_bounded_memory, .timeout = 120) {
    server s;
    start(&s, "a.model", NULL);
    static char out[1 << 16];
    cr_assert_eq(http(&s, "POST", "/v1/models/m:predict", ROWS, out, sizeof out), 200, "%s", out);
    char rows[800], arr[800];
    snprintf(rows, sizeof rows, "%s/rows.json", s.dir);
    snprintf(arr, sizeof arr, "%s/arr.json", s.dir);
    big_body(rows, "{\"instances\":[", "{}", "]}");
    big_body(arr, "{\"instances\":[{\"user_id\":[", "1", "]}]}");
    long base = status_kb(s.pid, "VmRSS:");
    char cmd[3000];
    snprintf(cmd, sizeof cmd,
             "cd '%s'; i=0; for f in rows arr rows arr; do i=$((i+1)); curl -s -m 60 -o $f.$i.out -w '%%{http_code}\\n' "
             "--data-binary @$f.json http://127.0.0.1:%d/v1/models/m:predict >> codes & done; wait; "
             "test $(grep -c 413 codes) = 2 && test $(grep -c 400 codes) = 2 && "
             "grep -l too_many_instances rows.*.out | wc -l | grep -q 2 && grep -l bad_type arr.*.out | wc -l | grep -q 2",
             s.dir, s.port);
    cr_assert_eq(fx_sh("%s", cmd), 0, "the hostile requests were not refused as expected (see %s)", s.dir);
    long peak = status_kb(s.pid, "VmHWM:"), after = status_kb(s.pid, "VmRSS:");
    const long body_kb = 16000000 / 1024;
    cr_assert_lt(peak - base, 4 * body_kb + 32 * 1024, "peak RSS %ld kB over a base of %ld kB", peak, base);
    cr_assert_lt(after - base, 8 * 1024, "RSS %ld kB after the requests, %ld kB before", after, base);
    cr_assert_eq(http(&s, "POST", "/v1/models/m:predict", ROWS, out, sizeof out), 200, "%s", out);
    cr_assert_eq(metric(&s, "semctr_request_errors_total{kind=\"too_many_instances\"} "), 2);
    cr_assert_eq(metric(&s, "semctr_request_errors_total{kind=\"bad_type\"} "), 2);
    cr_assert_eq(stop(&s), 0);
}

/* Open n connections to the server from the local address src; each sends
 * head (NULL: nothing). Returns how many connected. */
static int crowd(server *s, const char *src, int n, const char *head, int *fds) {
    int k = 0;
    for (int i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
        struct sockaddr_in a = {0}, me = {0};
        me.sin_family = a.sin_family = AF_INET;
        inet_pton(AF_INET, src, &me.sin_addr);
        cr_assert_eq(bind(fd, (struct sockaddr *)&me, sizeof me), 0, "bind %s: %s", src, strerror(errno));
        a.sin_port = htons((uint16_t)s->port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
            close(fd);
            continue;
        }
        if (head) send(fd, head, strlen(head), MSG_NOSIGNAL);
        fds[k++] = fd;
    }
    return k;
}

/* One prediction from the local address src; its seconds. */
static double timed_predict(server *s, const char *src) {
    static char out[1 << 16];
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int code = http_from(s, src, "POST", "/v1/models/m:predict", ROWS, out, sizeof out);
    clock_gettime(CLOCK_MONOTONIC, &b);
    cr_assert_eq(code, 200, "a client from %s got %d: %s", src, code, out);
    return (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) * 1e-9;
}

/* ~1,020 idle connections used to starve every new client (libmicrohttpd's
 * limit, no per-address limit, no deadline before the first byte). */
Test(serve_http, crowds_of_idle_and_slow_connections_never_lock_a_new_client_out, .timeout = 120) {
    struct rlimit nofile;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &nofile), 0);
    if (nofile.rlim_max != RLIM_INFINITY && nofile.rlim_max < 1400) cr_skip("needs 1,400 open files (ulimit -Hn)");
    nofile.rlim_cur = nofile.rlim_max;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &nofile), 0);
    static int fds[1400];
    server s;
    /* the defaults: 1,100 connections that send nothing, from one address */
    start(&s, "a.model", NULL);
    int n = crowd(&s, "127.0.0.11", 1100, NULL, fds); /* not 127.0.0.1, which reads /metrics */
    cr_assert_eq(n, 1100);
    double t = timed_predict(&s, "127.0.0.2");
    cr_assert_lt(t, 2.0, "a new client waited %.2f s behind 1,100 idle connections", t);
    cr_assert_geq(metric_reaches(&s, "semctr_connections_closed_total{reason=\"per_ip_limit\"} ", 1100 - 256), 1100 - 256);
    for (int i = 0; i < n; i++) close(fds[i]);
    cr_assert_eq(stop(&s), 0);

    /* small limits: a slow-loris crowd from one address is capped at once,
     * one from many addresses that fills every slot loses them at the
     * --idle-timeout deadline however it trickles */
    start(&s, "a.model", "--max-connections 64 --max-connections-per-ip 16 --idle-timeout 2 --timeout 3");
    const char *head = "POST /v1/models/m:predict HTTP/1.1\r\nHost: x\r\n";
    n = crowd(&s, "127.0.0.11", 200, head, fds);
    t = timed_predict(&s, "127.0.0.2");
    cr_assert_lt(t, 1.5, "a new client waited %.2f s behind one address's slow-loris", t);
    char src[32];
    int m = n;
    for (int a = 12; a <= 15; a++) {
        snprintf(src, sizeof src, "127.0.0.%d", a);
        m += crowd(&s, src, 16, head, fds + m);
    }
    /* every slot taken; the new client waits in the listen queue until the deadline frees some */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char cmd[1200];
    snprintf(cmd, sizeof cmd,
             "curl -s -m 20 --interface 127.0.0.7 -o /dev/null -w '%%{http_code}' -d '{\"instances\":[{\"user_id\":\"1\"}]}' "
             "http://127.0.0.1:%d/v1/models/m:predict > '%s/late' &", s.port, s.dir);
    cr_assert_eq(fx_sh("%s", cmd), 0);
    for (int k = 0; k < 25; k++) { /* trickle a byte every 200 ms: no inactivity timer saves the server */
        for (int i = n; i < m; i++) send(fds[i], "X", 1, MSG_NOSIGNAL);
        msleep(200);
        char late[800];
        snprintf(late, sizeof late, "%s/late", s.dir);
        if (fx_sh("grep -q 200 '%s'", late) == 0) break;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_assert_eq(fx_sh("grep -q 200 '%s/late'", s.dir), 0, "the new client was never answered");
    t = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
    cr_assert_lt(t, 4.5, "a new client waited %.2f s behind a full house of slow-loris connections", t);
    cr_assert_geq(metric_reaches(&s, "semctr_connections_closed_total{reason=\"per_ip_limit\"} ", 200 - 16), 200 - 16);
    cr_assert_geq(metric_reaches(&s, "semctr_connections_closed_total{reason=\"idle_timeout\"} ", 16 + 64), 16 + 64);
    cr_assert_eq(metric(&s, "semctr_connections_max{scope=\"total\"} "), 64);
    for (int i = 0; i < m; i++) close(fds[i]);
    /* a slow POST: a whole head, then its body a byte at a time; closed at --timeout all the same */
    int slow;
    cr_assert_eq(crowd(&s, "127.0.0.20", 1, "POST /v1/models/m:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n",
                       &slow), 1);
    char c;
    int closed = 0;
    for (int k = 0; k < 30 && !closed; k++) {
        msleep(200);
        closed = send(slow, "{", 1, MSG_NOSIGNAL) < 0 || recv(slow, &c, 1, MSG_DONTWAIT) == 0;
    }
    close(slow);
    cr_assert(closed, "a slow POST trickling its body was still open after 6 s (--timeout 3)");
    cr_assert_geq(metric(&s, "semctr_request_errors_total{kind=\"timeout\"} "), 1);
    cr_assert_eq(stop(&s), 0);
}

/* The fixture model with every known user's embedding set to NaN: a row of
 * missing values (the load check) still scores, a known user does not. */
static void nan_model(const char *out) {
    char src[800];
    snprintf(src, sizeof src, "%s/a.model", fx_dir());
    sc_model_bundle b;
    sc_error err;
    cr_assert_eq(sc_model_bundle_load(&b, src, 1, &err), 0, "%s", err.msg);
    int np, hit = 0;
    sc_model *m = sc_model_bundle_network(&b, "main");
    cr_assert(m);
    sc_param *p = sc_model_params(m, &np);
    for (int k = 0; k < np; k++)
        if (!strcmp(p[k].name, "emb.user_id"))
            for (int64_t i = 2 * (int64_t)p[k].cols; i < p[k].size; i++, hit = 1) p[k].data[i] = NAN; /* 0 pad, 1 OOV */
    cr_assert(hit, "no emb.user_id");
    cr_assert_eq(sc_model_bundle_save(&b, out, &err), 0, "%s", err.msg);
    sc_model_bundle_free(&b);
}

Test(serve_http, a_non_finite_score_is_an_error_never_an_answer) {
    char name[64], path[800];
    snprintf(name, sizeof name, "nan.%d.model", (int)getpid());
    snprintf(path, sizeof path, "%s/%s", fx_dir(), name);
    nan_model(path);
    server s;
    start(&s, name, NULL);
    static char out[1 << 16];
    cr_assert_eq(http(&s, "POST", "/v1/models/m:predict", "{\"instances\":[{\"user_id\":\"nobody\"}]}", out, sizeof out),
                 200, "%s", out);
    int code = http(&s, "POST", "/v1/models/m:predict",
                    "{\"instances\":[{\"user_id\":\"nobody\"},{\"user_id\":\"196\",\"item_id\":\"242\"}]}", out, sizeof out);
    cr_assert_eq(code, 500, "%d: %s", code, out);
    cr_assert(strstr(out, "\"kind\":\"non_finite_score\"") && strstr(out, "instance 1") && !strstr(out, "nan,"), "%s", out);
    cr_assert_eq(metric(&s, "semctr_request_errors_total{kind=\"non_finite_score\"} "), 1);
    cr_assert_eq(metric(&s, "semctr_predict_errors_total{model=\"m\"} "), 1);
    cr_assert_eq(stop(&s), 0);
    /* predict: exits non-zero naming the row, writes no scores */
    char cmd[3000];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && printf 'user_id,item_id\\nnobody,1\\n196,242\\n' > nan.%d.csv && "
             "'%s' predict --model '%s' --input nan.%d.csv --output nan.%d.out > nan.%d.log 2>&1; rc=$?; "
             "test $rc = 1 && grep -q 'data row 2' nan.%d.log && grep -q 'not a number' nan.%d.log && test ! -e nan.%d.out",
             fx_dir(), (int)getpid(), fx_bin(), path, (int)getpid(), (int)getpid(), (int)getpid(), (int)getpid(),
             (int)getpid(), (int)getpid());
    cr_assert_eq(fx_sh("%s", cmd), 0, "predict on a NaN model (see %s/nan.%d.log)", fx_dir(), (int)getpid());
    fx_sh("cd '%s' && rm -f nan.%d.csv nan.%d.log", fx_dir(), (int)getpid(), (int)getpid());
    unlink(path);
}

/* Every byte of b[0..n) is part of valid UTF-8. */
static int valid_utf8(const char *b) {
    const unsigned char *s = (const unsigned char *)b;
    while (*s) {
        int l = *s < 0x80 ? 1 : (*s & 0xE0) == 0xC0 ? 2 : (*s & 0xF0) == 0xE0 ? 3 : (*s & 0xF8) == 0xF0 ? 4 : 0;
        if (!l) return 0;
        for (int k = 1; k < l; k++)
            if ((s[k] & 0xC0) != 0x80) return 0;
        s += l;
    }
    return 1;
}

Test(serve_http, bytes_that_are_not_text_are_refused_or_escaped) {
    server s;
    start(&s, "a.model", NULL);
    static char out[1 << 16];
    /* U+0000 inside a string used to cut it ("19\\u0000zzz" scored as user "19") */
    cr_assert_eq(http(&s, "POST", "/v1/models/m:predict", "{\"instances\":[{\"user_id\":\"19\\u0000zzz\"}]}", out,
                      sizeof out), 400, "%s", out);
    cr_assert(strstr(out, "\"kind\":\"bad_value\"") && strstr(out, "instances[0].user_id") && strstr(out, "NUL"), "%s", out);
    /* a key of bytes that are not UTF-8, and a URL with one: the error body stays UTF-8, the byte shown as \xff */
    cr_assert_eq(http(&s, "POST", "/v1/models/m:predict", "{\"instances\":[{\"\xff\xfe\":1}]}", out, sizeof out), 400);
    cr_assert(valid_utf8(out) && strstr(out, "\\\\xff\\\\xfe") && strstr(out, "unknown_field"), "%s", out);
    cr_assert_eq(http(&s, "GET", "/v1/models/%FF%C3", NULL, out, sizeof out), 404);
    cr_assert(valid_utf8(out) && strstr(out, "\\\\xff"), "%s", out);
    cr_assert_eq(metric(&s, "semctr_request_errors_total{kind=\"bad_value\"} "), 1);
    cr_assert_eq(stop(&s), 0);
}

/* A replacement whose header was edited (a tensor's offset, same length)
 * used to load and score wrong; the checksum now covers the header. */
Test(serve_http, an_edited_model_file_is_refused_on_reload) {
    server s;
    start(&s, "a.model", NULL);
    char path[800];
    snprintf(path, sizeof path, "%s/a.model", fx_dir());
    FILE *f = fopen(path, "rb");
    cr_assert(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    char *b = malloc((size_t)size);
    cr_assert(b && fread(b, 1, (size_t)size, f) == (size_t)size);
    fclose(f);
    uint64_t hlen;
    memcpy(&hlen, b + 16, 8);
    /* the first offset of four digits or more, moved 64 bytes back (still aligned, still inside) */
    char *at = b + 24, *end = b + 24 + hlen;
    long off = 0;
    int digits = 0;
    for (; (at = memmem(at, (size_t)(end - at), "\"offset\":", 9)); at += 9) {
        off = strtol(at + 9, NULL, 10);
        digits = snprintf(NULL, 0, "%ld", off);
        if (off >= 1088) break;
    }
    cr_assert(at, "no large offset in the header");
    char num[32];
    snprintf(num, sizeof num, "%0*ld", digits, off - 64);
    memcpy(at + 9, num, (size_t)digits);
    char tmp[800], dst[800];
    snprintf(tmp, sizeof tmp, "%s/edited.model", s.dir);
    snprintf(dst, sizeof dst, "%s/m.model", s.dir);
    f = fopen(tmp, "wb");
    cr_assert(f && fwrite(b, 1, (size_t)size, f) == (size_t)size);
    fclose(f);
    free(b);
    cr_assert_eq(rename(tmp, dst), 0);
    msleep(600); /* --watch 0.1 */
    cr_assert_eq(metric(&s, "semctr_model_reloads_total{model=\"m\",result=\"failure\"} "), 1);
    cr_assert_eq(metric(&s, "semctr_model_version{model=\"m\"} "), 1);
    static char out[1 << 16];
    cr_assert_eq(http(&s, "GET", "/v1/models/m", NULL, out, sizeof out), 200);
    cr_assert(strstr(out, "\"failed\":true") && strstr(out, "checksum"), "%s", out);
    cr_assert_eq(http(&s, "POST", "/v1/models/m:predict", ROWS, out, sizeof out), 200, "%s", out);
    cr_assert_eq(stop(&s), 0);
}
