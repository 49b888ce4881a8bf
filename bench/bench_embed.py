#!/usr/bin/env python3
"""semctr's encoder against sentence-transformers (PyTorch CPU), same model
(all-MiniLM-L6-v2), same threads, same batch size, alternating runs in one
invocation, median of 5. Writes bench/results/embed.json and embed.md
(format: ../shared/BENCH.md).

    python3 bench/bench_embed.py [--threads 2] [--batch 32] [--reps 5] [--data DIR]
                                 [--texts FILE] [--bin build/semctr]

Cases: the 1,682 MovieLens titles (u.item) and 2,000 Amazon Musical
Instruments reviews (longer texts, truncated at the model's 256 tokens),
read from --data (default $SEMCTR_DATA or ../shared/data); or, with --texts,
the lines of FILE (another dataset's texts; results in embed-FILENAME).
--bin: the semctr whose `embed` memory is measured (default build/semctr,
built first, as is build/bench_embed from build/libsemctr.a).
Also: the share of the machine's measured sgemm peak that semctr's GEMM
FLOPs reach, and peak RSS of `semctr embed` vs the Python process.
"""
import argparse, datetime, json, os, platform, resource, statistics, subprocess, sys, tempfile, time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
DATA = os.environ.get("SEMCTR_DATA", os.path.join(ROOT, "../shared/data"))
CACHE = os.environ.get("SEMCTR_CACHE", os.path.expanduser("~/.cache/semctr"))
MODEL = os.environ.get("SEMCTR_MODEL", os.path.join(CACHE, "models/all-MiniLM-L6-v2"))
LIBS = "-lopenblas -lyaml -lcjson -lxxhash -lutf8proc -lpcre2-8 -lmicrohttpd -lpthread -lm".split()

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--reps", type=int, default=5)
ap.add_argument("--data", default=DATA, help="the folder holding ml-100k/ and amazon-musical-instruments/")
ap.add_argument("--texts", help="embed the lines of this file instead (one text per line)")
ap.add_argument("--bin", default=os.path.join(ROOT, "build/semctr"), help="semctr for the peak-memory case")
args = ap.parse_args()
DATA = args.data
SEMCTR = os.path.abspath(args.bin)
NAME = "embed" if not args.texts else "embed-" + os.path.splitext(os.path.basename(args.texts))[0]

subprocess.run(["bash", os.path.join(ROOT, "scripts/fetch_model.sh")], check=True, stdout=subprocess.DEVNULL)
subprocess.run(["make", "-C", ROOT, "-s", "BUILD=build", "build/libsemctr.a", "build/semctr"], check=True)
bench_bin = os.path.join(ROOT, "build/bench_embed")
subprocess.run(["cc", "-std=c11", "-D_GNU_SOURCE", "-O2", "-march=native", "-I" + os.path.join(ROOT, "src"),
                os.path.join(ROOT, "bench/bench_embed.c"), os.path.join(ROOT, "build/libsemctr.a"), "-o", bench_bin]
               + LIBS, check=True)

tmp = tempfile.mkdtemp(prefix="semctr-bench-")
if args.texts:
    with open(args.texts, encoding="utf-8") as f:
        titles = reviews = [l.rstrip("\n") for l in f if l.strip()]
    cases = [("%s (%d lines)" % (os.path.basename(args.texts), len(titles)), titles, True)]
else:
    with open(os.path.join(DATA, "ml-100k/u.item"), "rb") as f:
        titles = [l.split(b"|")[1].decode("latin-1") for l in f]
    reviews = []
    with open(os.path.join(DATA, "amazon-musical-instruments/reviews_Musical_Instruments_5.json")) as f:
        for l in f:
            t = " ".join(json.loads(l)["reviewText"].split())
            if t:
                reviews.append(t)
            if len(reviews) == 2000:
                break
    # non-English (and other non-ASCII) one-line strings of the Qwen2 tokenizer fixture: accuracy only
    other = []
    with open(os.path.join(ROOT, "tests/fixtures/gguf/qwen2_tokens.txt")) as f:
        for l in f:
            try:
                t = bytes.fromhex(l.split("\t")[0]).decode("utf-8")
            except ValueError:
                continue
            if t.strip() and "\n" not in t and any(ord(c) > 127 for c in t):
                other.append(t)
    cases = [("movielens titles (1,682)", titles, True), ("amazon reviews (2,000, <= 256 tokens)", reviews, True),
             ("non-ASCII strings (%d, 20+ scripts)" % len(other), other, False)]

import torch
import sentence_transformers
from sentence_transformers import SentenceTransformer

torch.set_num_threads(args.threads)
st = SentenceTransformer(MODEL, device="cpu")
st.encode(titles[:64], batch_size=args.batch)  # warm-up

import numpy as np

def cosines(a, b):
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))

PRECISIONS = ("f32", "bf16")
rows, extra, peaks, accuracy = [], {}, [], []
for name, texts, timed in cases:
    path = os.path.join(tmp, "in.txt")
    with open(path, "w") as f:
        f.write("\n".join(texts) + "\n")
    sc_t = {p: [] for p in PRECISIONS}
    st_t, info, vec = [], {}, {}
    for r in range(args.reps if timed else 1):
        for p in PRECISIONS:
            out = subprocess.run([bench_bin, MODEL, path, str(args.threads), str(args.batch), "1", p,
                                  os.path.join(tmp, p + ".f32")], check=True, capture_output=True, text=True).stdout.splitlines()
            run = json.loads(out[0])
            info[p] = run
            peaks.append(json.loads(out[1])["sgemm_peak_flops"])
            sc_t[p].append(run["seconds"])
        t0 = time.perf_counter()
        vec["st"] = st.encode(texts, batch_size=args.batch)
        st_t.append(time.perf_counter() - t0)
        print("%s rep %d: semctr f32 %.2fs, bf16 %.2fs, sentence-transformers %.2fs"
              % (name, r, sc_t["f32"][-1], sc_t["bf16"][-1], st_t[-1]), file=sys.stderr)
    for p in PRECISIONS:
        vec[p] = np.fromfile(os.path.join(tmp, p + ".f32"), np.float32).reshape(len(texts), -1)
    # cosine of each text's vector: bf16 against f32 (the precision's own error), each against PyTorch
    acc = {"case": name, "texts": len(texts)}
    for a, b in (("bf16", "f32"), ("f32", "st"), ("bf16", "st")):
        c = cosines(vec[a], vec[b])
        acc["%s_vs_%s" % (a, b)] = {"min": round(float(c.min()), 7), "median": round(float(np.median(c)), 7)}
    accuracy.append(acc)
    if not timed:
        continue
    st_rate = len(texts) / statistics.median(st_t)
    for p in PRECISIONS:
        sc_rate = len(texts) / statistics.median(sc_t[p])
        rows.append({"case": "%s, batch %d, %d threads, semctr --precision %s" % (name, args.batch, args.threads, p),
                     "metric": "texts/s", "semctr": round(sc_rate, 1),
                     "peer": "sentence-transformers %s (torch %s CPU)" % (sentence_transformers.__version__, torch.__version__),
                     "peer_value": round(st_rate, 1), "ratio": round(sc_rate / st_rate, 2), "better": "higher"})
        run = info[p]
        extra["%s, %s" % (name, p)] = {
            "tokens": run["tokens"], "flops": run["flops"],
            "semctr_gflops": round(run["flops"] / statistics.median(sc_t[p]) / 1e9, 1),
            "semctr_seconds": [round(x, 3) for x in sc_t[p]], "peer_seconds": [round(x, 3) for x in st_t]}
# The machine's sgemm peak: the best measurement over all runs (the machine is
# shared, so single measurements can be low).
for name, d in extra.items():
    d["sgemm_peak_gflops"] = round(max(peaks) / 1e9, 1)
    d["fraction_of_sgemm_peak"] = round(d["semctr_gflops"] * 1e9 / max(peaks), 2)

# Peak memory: semctr embed (whole CLI) vs a Python process doing the same.
path = os.path.join(tmp, "in.txt")
with open(path, "w") as f:
    f.write("\n".join(reviews) + "\n")
def peak_rss(cmd):
    # VmHWM polled from /proc: ru_maxrss of a child forked from this (torch-
    # loaded) process would start at this process's own resident size.
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    hwm = 0
    while p.poll() is None:
        try:
            with open("/proc/%d/status" % p.pid) as f:
                for l in f:
                    if l.startswith("VmHWM:"):
                        hwm = max(hwm, int(l.split()[1]) * 1024)
        except (FileNotFoundError, ProcessLookupError):
            pass
        time.sleep(0.05)
    assert p.returncode == 0, cmd
    return hwm
sc_rss = peak_rss([SEMCTR, "embed", "--model", MODEL, "--input", path, "--out",
                   os.path.join(tmp, "out.vs"), "--threads", str(args.threads), "--batch", str(args.batch)])
py = ("import torch,sys; torch.set_num_threads(%d)\nfrom sentence_transformers import SentenceTransformer\n"
      "m=SentenceTransformer(%r,device='cpu'); m.encode(open(%r).read().splitlines(),batch_size=%d)"
      % (args.threads, MODEL, path, args.batch))
st_rss = peak_rss([sys.executable, "-c", py])
rows.append({"case": "peak RSS encoding %s, batch %d" % ("the 2,000 reviews" if not args.texts else cases[0][0], args.batch), "metric": "MiB",
             "semctr": round(sc_rss / 2**20, 1), "peer": rows[0]["peer"], "peer_value": round(st_rss / 2**20, 1),
             "ratio": round(st_rss / sc_rss, 2), "better": "lower"})
model_mib = os.path.getsize(os.path.join(MODEL, "model.safetensors")) / 2**20

cpu = "unknown"
for l in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
    if l.startswith("Model name:"):
        cpu = l.split(":", 1)[1].strip()
res = {"name": NAME, "date": datetime.date.today().isoformat(),
       "command": "python3 bench/bench_embed.py " + " ".join(sys.argv[1:]),
       "machine": {"cpu": cpu, "cores": os.cpu_count(), "gpu": None,
                   "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
       "model": "all-MiniLM-L6-v2 (%.1f MiB F32 safetensors)" % model_mib,
       "rows": rows, "details": extra, "accuracy": accuracy}
os.makedirs(os.path.join(ROOT, "bench/results"), exist_ok=True)
with open(os.path.join(ROOT, "bench/results/%s.json" % NAME), "w") as f:
    json.dump(res, f, indent=2)
with open(os.path.join(ROOT, "bench/results/%s.md" % NAME), "w") as f:
    f.write("# embed: semctr encoder vs sentence-transformers\n\n")
    f.write("%s, `%s`, %s (%d cores), model %s. Median of %d alternating runs; both sides encode the same texts "
            "with %d threads and batch %d (model load excluded from texts/s).\n\n"
            % (res["date"], res["command"], cpu, os.cpu_count(), res["model"], args.reps, args.threads, args.batch))
    f.write("| case | metric | semctr | %s | ratio |\n| --- | --- | ---: | ---: | ---: |\n" % rows[0]["peer"])
    for r in rows:
        f.write("| %s | %s | %s | %s | %.2f |\n" % (r["case"], r["metric"], r["semctr"], r["peer_value"], r["ratio"]))
    f.write("\nRatio above 1 means semctr is ahead (throughput: semctr/peer; memory: peer/semctr).\n\n")
    f.write("GEMM efficiency (model FLOPs: 2 x (4C^2 + 2CF) per token and layer + attention; peak: OpenBLAS "
            "sgemm 2048^3 on the same threads, best of all runs):\n\n")
    for name, d in extra.items():
        f.write("- %s: %d tokens, %.1f GFLOP/s = %.0f%% of the measured sgemm peak (%.1f GFLOP/s)\n"
                % (name, d["tokens"], d["semctr_gflops"], 100 * d["fraction_of_sgemm_peak"], d["sgemm_peak_gflops"]))
    f.write("\nAccuracy: per-text cosine between the vectors of `--precision bf16` and `f32`, and of each "
            "against sentence-transformers (float32 PyTorch), min / median over the texts:\n\n"
            "| case | texts | bf16 vs f32 | f32 vs PyTorch | bf16 vs PyTorch |\n| --- | ---: | ---: | ---: | ---: |\n")
    for a in accuracy:
        f.write("| %s | %d | %s |\n" % (a["case"], a["texts"], " | ".join(
            "%.6f / %.7f" % (a[k]["min"], a[k]["median"]) for k in ("bf16_vs_f32", "f32_vs_st", "bf16_vs_st"))))
    f.write("\nPeak RSS of `semctr embed` includes the mmap'ed weights (%.1f MiB) and the activations of one batch. "
            "Load average at the end of the run: %s (the machine is shared; runs alternate so both sides see the "
            "same load).\n" % (model_mib, res["machine"]["load_average_at_end"]))
print(open(os.path.join(ROOT, "bench/results/%s.md" % NAME)).read())
