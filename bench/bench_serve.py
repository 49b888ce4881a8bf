"""Serving benchmark (issue 5): in-process scoring of DeepFM and DCNv2 (D=16,
DNN 256-128, 2 cross layers) by semctr (C API through `semctr bench-serve`:
raw string cells in, so encoding is included) against the same architecture
in DeepCTR-Torch (PyTorch eager, no_grad) and in ONNX Runtime (CPU, the
DeepCTR-Torch model exported to ONNX), peers fed pre-encoded id tensors.
Batches 1/100/1000, 1 thread and all threads, alternating, median of
--rounds. Then `wrk` against `semctr serve` at 100 rows per request.
Writes bench/results/serve.{json,md} (format: ../shared/BENCH.md).

--bin-before OLD_BINARY adds an earlier semctr build as one more engine in the
same alternating rounds (before/after side by side), and a memory section:
bench/serve_memory.c built against the libsemctr.a beside each binary counts
the library's live bytes per scoring context. --bf16 adds this build with
--precision bf16 as an engine and compares its scores with f32's.

Usage: python3 bench/bench_serve.py [--rounds 5] [--seconds 0.5] [--wrk-seconds 60] [--bin build/semctr] [--bin-before OLD]
           [--config configs/ml-100k.yaml --data DIR --rows CSV]
MovieLens-100K by default: request rows (user, item, the user's 20 previous
items) come from u.data. Another dataset: --config, --data (its prepared
folder, default runs/bench-serve-NAME/data, prepared when missing) and --rows,
a CSV of raw rows with a header naming the input columns (as `semctr predict`
reads); the results go to serve-NAME.{json,md}."""
import argparse, json, os, platform, re, signal, statistics, subprocess, sys, tempfile, time
import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--rounds", type=int, default=5)
ap.add_argument("--seconds", type=float, default=0.5)
ap.add_argument("--wrk-seconds", type=int, default=60)
ap.add_argument("--bin", default="build/semctr")
ap.add_argument("--bin-before", help="an earlier semctr build, run side by side as the 'before' engine")
ap.add_argument("--before-label", default="before", help="what the earlier build is (e.g. a commit)")
ap.add_argument("--bf16", action="store_true", help="also run this build with --precision bf16 (engine 'bf16')")
ap.add_argument("--config", default="configs/ml-100k.yaml")
ap.add_argument("--data", help="the prepared dataset (default WORK/data; prepared when missing)")
ap.add_argument("--rows", help="CSV of raw request rows with a header (required unless the dataset is ml-100k)")
a = ap.parse_args()
BIN = os.path.abspath(a.bin)
BIN_BEFORE = os.path.abspath(a.bin_before) if a.bin_before else None
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchio import config_name  # noqa: E402
DATASET = config_name(a.config)
WORK = "runs/bench-serve" if DATASET == "ml-100k" else f"runs/bench-serve-{DATASET}"
NAME = "serve" if DATASET == "ml-100k" else f"serve-{DATASET}"
DATA = a.data or f"{WORK}/data"
if DATASET != "ml-100k" and not a.rows:
    sys.exit("bench_serve: --rows CSV (raw request rows with a header) is needed for a dataset other than ml-100k")
os.makedirs(WORK, exist_ok=True)
env = dict(os.environ, SEMCTR_QUIET="1")
env.setdefault("SEMCTR_DATA", os.path.abspath("../shared/data"))
cores = os.cpu_count()
THREADS = sorted({1, cores})
BATCHES = [1, 100, 1000]

def sh(*args):
    return subprocess.run(args, check=True, capture_output=True, text=True, env=env).stdout

# ---- models and rows ----
if not os.path.exists(f"{DATA}/meta.json"):
    sh(BIN, "prepare", "--config", a.config, "--out", DATA)
for m in ("deepfm", "dcnv2"):
    if not os.path.exists(f"{WORK}/{m}.model"):
        sh(BIN, "train", "--data", DATA, "--model", m, "--out", f"{WORK}/{m}.model", "--epochs", "1",
           "--max-steps", "200", "--embed-dim", "16", "--hidden", "256,128", "--cross", "2")
meta = json.load(open(f"{DATA}/meta.json"))
fields = meta["fields"]
if a.rows:
    import csv as csvmod
    with open(a.rows, newline="") as f:
        rows = [dict(r) for _, r in zip(range(3000), csvmod.DictReader(f))]
    csv = os.path.abspath(a.rows)
else:
    # raw rows: user, item and the user's previous items (most recent first), as a client would send them
    rows, hist = [], {}
    for line in open(os.path.join(env["SEMCTR_DATA"], "ml-100k/u.data")):
        u, i, r, t = line.split("\t")
        h = hist.setdefault(u, [])
        rows.append({"user_id": u, "item_id": i, "history": "|".join(reversed(h[-20:]))})
        h.append(i)
        if len(rows) == 3000:
            break
    csv = f"{WORK}/rows.csv"
    with open(csv, "w") as f:
        f.write("user_id,item_id,history\n")
        for r in rows:
            f.write(",".join(r.values()) + "\n")

# ---- peers ----
import torch, onnxruntime as ort, deepctr_torch
from deepctr_torch.inputs import DenseFeat, SparseFeat, VarLenSparseFeat
from deepctr_torch.models import DeepFM, DCN

def peer_model(name):
    cols = []
    for fd in fields:
        if fd["kind"] == "numeric":
            cols.append(DenseFeat(fd["name"], 1))
        elif fd["kind"] == "categorical":
            cols.append(SparseFeat(fd["name"], fd["vocab_size"], 16))
        else:
            emb = fd.get("share_with") or fd["name"]
            vocab = next(g["vocab_size"] for g in fields if g["name"] == emb)
            cols.append(VarLenSparseFeat(SparseFeat(fd["name"], vocab, 16, embedding_name=emb), fd["width"], "mean"))
    kw = dict(linear_feature_columns=cols, dnn_feature_columns=cols, task="binary", device="cpu",
              dnn_hidden_units=(256, 128))
    m = DeepFM(**kw) if name == "deepfm" else DCN(cross_num=2, cross_parameterization="matrix", **kw)
    return m.eval()

rng = np.random.default_rng(1)
def peer_input(B):
    parts = []
    for fd in fields:
        if fd["kind"] == "numeric":
            parts.append(rng.random((B, 1)))
            continue
        vocab = next(g["vocab_size"] for g in fields if g["name"] == (fd.get("share_with") or fd["name"]))
        parts.append(rng.integers(2, vocab, size=(B, fd["width"])))
    return np.concatenate(parts, 1).astype(np.float32)

def timed(fn, seconds):
    for _ in range(10):
        fn()
    lat, t0 = [], time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        s = time.perf_counter()
        fn()
        lat.append(time.perf_counter() - s)
    lat.sort()
    return len(lat) / (time.perf_counter() - t0), lat[len(lat) // 2] * 1e3, lat[int(len(lat) * 0.99)] * 1e3

peers, sessions = {}, {}
for name in ("deepfm", "dcnv2"):
    m = peer_model(name)
    peers[name] = m
    path = f"{WORK}/{name}.onnx"
    x = torch.from_numpy(peer_input(4))
    try:
        torch.onnx.export(m, (x,), path, input_names=["x"], output_names=["p"],
                          dynamic_axes={"x": {0: "B"}, "p": {0: "B"}}, opset_version=17, dynamo=False)
        for T in THREADS:
            so = ort.SessionOptions()
            so.intra_op_num_threads, so.inter_op_num_threads = T, 1
            so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            sessions[(name, T)] = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    except Exception as e:  # recorded, not hidden
        print(f"onnx export of {name} failed: {e}", file=sys.stderr)

# ---- rounds ----
res = {}  # (model, T, B, engine) -> list of (calls/s, p50, p99)
def add(k, v):
    res.setdefault(k, []).append(v)

for rnd in range(a.rounds):
    for name in ("deepfm", "dcnv2"):
        for T in THREADS:
            engines = [("before", BIN_BEFORE, []), ("semctr", BIN, []), ("bf16", BIN if a.bf16 else None, ["--precision", "bf16"])]
            for eng, b, extra in engines if rnd % 2 == 0 else engines[::-1]:
                if not b:
                    continue
                out = sh(b, "bench-serve", "--model", f"{WORK}/{name}.model", "--input", csv, "--threads", str(T),
                         "--seconds", str(a.seconds), "--batch", ",".join(map(str, BATCHES)), *extra)
                for line in out.splitlines():
                    r = json.loads(line)
                    assert r["failed"] == 0
                    add((name, T, r["batch"], eng), (r["calls_per_s"], r["p50_ms"], r["p99_ms"]))
            torch.set_num_threads(T)
            for B in BATCHES:
                x = peer_input(B)
                xt = torch.from_numpy(x)
                def fwd():
                    with torch.no_grad():
                        peers[name](xt)
                add((name, T, B, "torch"), timed(fwd, a.seconds))
                s = sessions.get((name, T))
                if s:
                    add((name, T, B, "ort"), timed(lambda: s.run(None, {"x": x}), a.seconds))
    print(f"round {rnd + 1}/{a.rounds} done", file=sys.stderr, flush=True)

def med(k, i):
    v = res.get(k)
    return statistics.median(x[i] for x in v) if v else None

# ---- memory: one model, N concurrent callers (scoring contexts) ----
# bench/serve_memory.c, built against the libsemctr.a beside each binary,
# counts the library's live bytes (base/alloc) after load, after one call
# and after N callers at once, and reads how many contexts the pool made.
LIBS = "-lopenblas -lyaml -lcjson -lxxhash -lutf8proc -lpcre2-8 -lmicrohttpd -lpthread -lm".split()
MEM_ROWS = [100, 1000]
mem = {}  # (model, engine, rows) -> dict
for eng, b in (("before", BIN_BEFORE), ("semctr", BIN)):
    lib = os.path.join(os.path.dirname(b), "libsemctr.a") if b else None
    if not lib or not os.path.exists(lib):
        continue
    exe = f"{WORK}/serve_memory.{eng}"
    subprocess.run(["cc", "-O2", "-Iinclude", "bench/serve_memory.c", lib, *LIBS, "-o", exe], check=True)
    for name in ("deepfm", "dcnv2"):
        for R in MEM_ROWS:
            mem[(name, eng, R)] = json.loads(sh(exe, f"{WORK}/{name}.model", csv, "8", str(R)))

# ---- bf16 against f32: the same 3,000 rows, 100 a call ----
acc = {}
if a.bf16:
    for name in ("deepfm", "dcnv2"):
        sc = {}
        for prec in ("f32", "bf16"):
            path = f"{WORK}/{name}.{prec}.scores"
            sh(BIN, "bench-serve", "--model", f"{WORK}/{name}.model", "--input", csv, "--batch", "100",
               "--precision", prec, "--dump-scores", path)
            sc[prec] = np.loadtxt(path, dtype=np.float32)
        d = np.abs(sc["f32"].astype(np.float64) - sc["bf16"])
        rk = lambda v: np.argsort(np.argsort(v, kind="stable"), kind="stable")
        acc[name] = {"rows": int(len(d)), "max_abs_diff": float(d.max()), "mean_abs_diff": float(d.mean()),
                     "rows_equal": int((d == 0).sum()),
                     "rank_corr": float(np.corrcoef(rk(sc["f32"]), rk(sc["bf16"]))[0, 1])}

# ---- HTTP with wrk ----
body = {"instances": rows[:100]}
bodyf = "bench/results/serve_body.json" if DATASET == "ml-100k" else f"{WORK}/body.json"
json.dump(body, open(bodyf, "w"))
port_file = f"{WORK}/port"
if os.path.exists(port_file):
    os.remove(port_file)
srv = subprocess.Popen([BIN, "serve", "--model", f"m={WORK}/deepfm.model", "--port", "0", "--port-file", port_file,
                        "--threads", str(cores)], env=env, stderr=subprocess.DEVNULL)
for _ in range(200):
    if os.path.exists(port_file):
        break
    time.sleep(0.05)
port = int(open(port_file).read())
def rss():
    return int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{srv.pid}/status").read()).group(1))
sh("curl", "-s", "-o", "/dev/null", "-H", "Content-Type: application/json", "--data-binary", "@" + bodyf,
   f"http://127.0.0.1:{port}/v1/models/m:predict")
rss0 = rss()
wout = subprocess.run(["wrk", "-t", "2", "-c", "8", "-d", f"{a.wrk_seconds}s", "--latency", "-s", "bench/wrk_predict.lua",
                       f"http://127.0.0.1:{port}"], capture_output=True, text=True,
                      env=dict(env, WRK_BODY=bodyf, WRK_MODEL="m")).stdout
rss1 = rss()
metrics = subprocess.run(["curl", "-s", f"http://127.0.0.1:{port}/metrics"], capture_output=True, text=True).stdout
srv.send_signal(signal.SIGTERM)
srv.wait(timeout=30)
def unit_ms(v, u):
    return float(v) * {"us": 1e-3, "ms": 1, "s": 1e3}[u]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", wout).group(1))
lat = {p: unit_ms(*re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", wout).groups()) for p in ("50", "99")}
total = int(re.search(r"(\d+) requests in", wout).group(1))
non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", wout)) else 0
sockerr = sum(map(int, m.groups())) if (m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", wout)) else 0
srv_err = sum(float(x) for x in re.findall(r'semctr_predict_errors_total\{model="m"\} (\S+)', metrics))

# ---- write ----
peer_t = f"deepctr-torch {deepctr_torch.__version__} (torch {torch.__version__} CPU, eager, no_grad)"
peer_o = f"onnxruntime {ort.__version__} CPU (DeepCTR-Torch model exported with torch.onnx, opset 17)"
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
out_rows = []
for name in ("deepfm", "dcnv2"):
    for T in THREADS:
        for B in BATCHES:
            s = (name, T, B, "semctr")
            for eng, peer in (("torch", peer_t), ("ort", peer_o)):
                p = (name, T, B, eng)
                case = f"{name}, batch {B}, {T} thread{'s' if T > 1 else ''}, in-process"
                sv, pv = med(s, 0) * B, (med(p, 0) * B if med(p, 0) else None)
                out_rows.append({"case": case, "metric": "rows/s", "semctr": round(sv), "peer": peer,
                                 "peer_value": round(pv) if pv else None, "ratio": round(sv / pv, 2) if pv else None,
                                 "better": "higher"})
                for q, i in (("p50", 1), ("p99", 2)):
                    sv_, pv_ = med(s, i), med(p, i)
                    out_rows.append({"case": case, "metric": f"{q} latency ms", "semctr": round(sv_, 4), "peer": peer,
                                     "peer_value": round(pv_, 4) if pv_ else None,
                                     "ratio": round(pv_ / sv_, 2) if pv_ else None, "better": "lower"})
if a.bf16:
    for name in ("deepfm", "dcnv2"):
        for T in THREADS:
            for B in BATCHES:
                s_, p_ = (name, T, B, "bf16"), (name, T, B, "ort")
                case = f"{name}, batch {B}, {T} thread{'s' if T > 1 else ''}, in-process, --precision bf16"
                out_rows.append({"case": case, "metric": "rows/s", "semctr": round(med(s_, 0) * B), "peer": peer_o,
                                 "peer_value": round(med(p_, 0) * B), "ratio": round(med(s_, 0) / med(p_, 0), 2),
                                 "better": "higher"})
                for q, i in (("p50", 1), ("p99", 2)):
                    out_rows.append({"case": case, "metric": f"{q} latency ms", "semctr": round(med(s_, i), 4),
                                     "peer": peer_o, "peer_value": round(med(p_, i), 4),
                                     "ratio": round(med(p_, i) / med(s_, i), 2), "better": "lower"})
if BIN_BEFORE:
    peer_b = f"semctr {a.before_label} (same machine, same run)"
    for name in ("deepfm", "dcnv2"):
        for T in THREADS:
            for B in BATCHES:
                s, p = (name, T, B, "semctr"), (name, T, B, "before")
                case = f"{name}, batch {B}, {T} thread{'s' if T > 1 else ''}, in-process"
                out_rows.append({"case": case, "metric": "rows/s", "semctr": round(med(s, 0) * B), "peer": peer_b,
                                 "peer_value": round(med(p, 0) * B), "ratio": round(med(s, 0) / med(p, 0), 2),
                                 "better": "higher"})
                for q, i in (("p50", 1), ("p99", 2)):
                    out_rows.append({"case": case, "metric": f"{q} latency ms", "semctr": round(med(s, i), 4), "peer": peer_b,
                                     "peer_value": round(med(p, i), 4), "ratio": round(med(p, i) / med(s, i), 2),
                                     "better": "lower"})
    for (name, eng, R), v in mem.items():
        if eng != "semctr" or (name, "before", R) not in mem:
            continue
        sv, pv = v["per_further_context_bytes"], mem[(name, "before", R)]["per_further_context_bytes"]
        out_rows.append({"case": f"{name}, bytes per further scoring context, calls of {R} rows (library count)",
                         "metric": "bytes", "semctr": sv, "peer": peer_b, "peer_value": pv,
                         "ratio": round(pv / sv, 2), "better": "lower"})
http = {"requests_per_s": rps, "rows_per_s": rps * 100, "p50_ms": lat["50"], "p99_ms": lat["99"], "requests": total,
        "non_2xx": non2xx, "socket_errors": sockerr, "server_errors": srv_err, "rss_kb_before": rss0, "rss_kb_after": rss1,
        "seconds": a.wrk_seconds, "wrk": "wrk -t2 -c8 --latency, 100 rows per request, deepfm, loopback, --threads %d" % cores}
for metric, v in (("requests/s", rps), ("p50 latency ms", lat["50"]), ("p99 latency ms", lat["99"])):
    out_rows.append({"case": "HTTP semctr serve, deepfm, 100 rows/request, wrk %ds" % a.wrk_seconds, "metric": metric,
                     "semctr": v, "peer": "none run (no TF Serving / Triton on this machine)", "peer_value": None,
                     "ratio": None, "better": "higher" if metric == "requests/s" else "lower"})
doc = {"name": NAME, "dataset": DATASET, "date": time.strftime("%Y-%m-%d"), "command": "python3 bench/bench_serve.py " + " ".join(sys.argv[1:]),
       "machine": {"cpu": cpu, "cores": cores, "gpu": None}, "rows": out_rows, "http": http,
       "memory": [{"model": k[0], "engine": k[1], "rows_per_call": k[2], **v} for k, v in mem.items()],
       "bf16_vs_f32": acc,
       "load_average_end": os.getloadavg()}
json.dump(doc, open(f"bench/results/{NAME}.json", "w"), indent=1)
with open(f"bench/results/{NAME}.md", "w") as f:
    f.write(f"# Serving benchmark ({doc['date']}, {cpu}, {cores} cores)\n\n`{doc['command']}`\n\n")
    cells = "user_id, item_id and a 20-item history" if not a.rows else "the columns of " + os.path.basename(a.rows)
    f.write(f"Dataset {DATASET}. In-process: semctr through the C API (`semctr bench-serve`: raw string cells of {cells} "
            "in, probabilities out, so vocabulary lookups and joins are included); the peers get "
            f"pre-encoded id tensors of the same {len(fields)} fields (same D=16, DNN 256-128, DCNv2 2 matrix cross layers). "
            f"Median of {a.rounds} alternating rounds of {a.seconds} s each. Ratio > 1: semctr ahead "
            "(throughput: semctr/peer; latency: peer/semctr).\n\n")
    f.write("| model | batch | threads | semctr rows/s | torch rows/s | ORT rows/s | vs torch | vs ORT | semctr p50/p99 ms | torch p50/p99 ms | ORT p50/p99 ms |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
    for name in ("deepfm", "dcnv2"):
        for T in THREADS:
            for B in BATCHES:
                def g(e, i):
                    v = med((name, T, B, e), i)
                    return v
                s0, t0_, o0 = g("semctr", 0), g("torch", 0), g("ort", 0)
                fmt = lambda e: "%.3f / %.3f" % (g(e, 1), g(e, 2)) if g(e, 1) else "n/a"
                f.write(f"| {name} | {B} | {T} | {s0 * B:,.0f} | {t0_ * B:,.0f} | " + (f"{o0 * B:,.0f}" if o0 else "n/a") +
                        f" | {s0 / t0_:.2f} | " + (f"{s0 / o0:.2f}" if o0 else "n/a") + f" | {fmt('semctr')} | {fmt('torch')} | {fmt('ort')} |\n")
    if BIN_BEFORE:
        f.write(f"\n## Before and after, same run\n\nsemctr {a.before_label} (`{a.bin_before}`) and this build "
                "alternate in every round (same rows, same machine). Ratio > 1: this build ahead.\n\n"
                "| model | batch | threads | before rows/s | after rows/s | after/before | before p50/p99 ms | after p50/p99 ms | after vs ORT (rows/s) | bf16 rows/s | bf16 vs ORT | bf16 p50/p99 ms |\n"
                "|---|---|---|---|---|---|---|---|---|---|---|---|\n")
        for name in ("deepfm", "dcnv2"):
            for T in THREADS:
                for B in BATCHES:
                    b0, s0, o0 = med((name, T, B, "before"), 0), med((name, T, B, "semctr"), 0), med((name, T, B, "ort"), 0)
                    f.write(f"| {name} | {B} | {T} | {b0 * B:,.0f} | {s0 * B:,.0f} | {s0 / b0:.2f} | "
                            f"{med((name, T, B, 'before'), 1):.3f} / {med((name, T, B, 'before'), 2):.3f} | "
                            f"{med((name, T, B, 'semctr'), 1):.3f} / {med((name, T, B, 'semctr'), 2):.3f} | "
                            + (f"{s0 / o0:.2f}" if o0 else "n/a") + " | ")
                    h0 = med((name, T, B, "bf16"), 0)
                    f.write((f"{h0 * B:,.0f} | " + (f"{h0 / o0:.2f}" if o0 else "n/a") +
                             f" | {med((name, T, B, 'bf16'), 1):.3f} / {med((name, T, B, 'bf16'), 2):.3f} |\n") if h0 else "- | - | - |\n")
        f.write("\n## Memory: one model, N scoring contexts\n\n`bench/serve_memory.c` (built against each build's "
                "libsemctr.a): the library's own count of live bytes (every allocation of libsemctr goes through "
                "base/alloc) after load, after one call, and after 8 callers released at once; the pool makes a context "
                "for each call that finds the others busy (how many it made is read from the scorer). \"Model\" "
                "includes the schema (vocabularies, join tables) and the first context.\n\n"
                "| model | rows a call | build | model + first context bytes | contexts made | bytes per further context |\n"
                "|---|---|---|---|---|---|\n")
        for (name, eng, R), v in sorted(mem.items()):
            f.write(f"| {name} | {R} | {'before' if eng == 'before' else 'after'} | {v['model_and_first_context_bytes']:,} | "
                    f"{v['contexts_made']} | {v['per_further_context_bytes']:,.0f} |\n")
    if acc:
        f.write("\n## --precision bf16 against f32\n\nThe 3,000 rows scored 100 a call by this build in f32 and in bf16 "
                "(`bench-serve --dump-scores`): absolute difference of the probabilities, and the rank correlation of the "
                "two orders.\n\n| model | rows | max abs diff | mean abs diff | rows equal | rank correlation |\n|---|---|---|---|---|---|\n")
        for name, v in acc.items():
            f.write(f"| {name} | {v['rows']:,} | {v['max_abs_diff']:.2e} | {v['mean_abs_diff']:.2e} | {v['rows_equal']} | {v['rank_corr']:.6f} |\n")
    f.write(f"\nPeers: {peer_t}; {peer_o}. Load average at the end: "
            + ", ".join(f"{x:.1f}" for x in os.getloadavg()) + f" on {cores} cores.\n\n## HTTP (`semctr serve` under wrk)\n\n{http['wrk']}, {a.wrk_seconds} s:\n\n")
    f.write(f"- {rps:,.0f} requests/s = {rps * 100:,.0f} rows/s; latency p50 {lat['50']:.3f} ms, p99 {lat['99']:.3f} ms\n")
    f.write(f"- {total:,} requests, {non2xx} non-2xx, {sockerr} socket errors, {srv_err:.0f} server-side errors\n")
    f.write(f"- server RSS {rss0 / 1024:.1f} MiB before, {rss1 / 1024:.1f} MiB after\n")
    f.write("- wrk and the server share the same cores; no HTTP peer was run (TF Serving / Triton are not installable here).\n")
print(open("bench/results/serve.md").read())
