#!/usr/bin/env python3
"""Training throughput (samples/s) of semctr vs DeepCTR-Torch on Criteo-shaped
data, side by side in one run: same prepared rows (bench/scd.py), embedding
size, DNN, batch size and thread count. Alternates the two sides and reports
the median of --repeats runs of --steps batches each. Also reports the
fraction of the machine's peak FLOP/s reached by semctr's dense layers, peak
measured as large float32 GEMM through numpy/OpenBLAS on the same threads.

Usage: python3 bench/train_throughput.py [--rows 1000000] [--models deepfm,dcnv2] [--bin build/semctr]
       python3 bench/train_throughput.py --config CONFIG [--data DIR] ...
Without --config: --rows rows of `semctr gen-criteo`, prepared with configs/criteo.yaml.
With --config: that dataset (--data: its prepared folder, default runs/NAME, prepared
when missing). Writes bench/results/train-throughput.{json,md} (another dataset:
train-throughput-NAME).
"""
import argparse, datetime, json, os, platform, subprocess, sys, time
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from scd import read_scd, deepctr_columns  # noqa: E402
from benchio import config_name  # noqa: E402

SEMCTR = os.path.join(ROOT, "build", "semctr")  # --bin


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def semctr_once(data, model, a, batch, work):
    out = os.path.join(work, f"tp-{model}.model")
    r = json.loads(sh([SEMCTR, "train", "--data", data, "--model", model, "--out", out, "--epochs", "1",
                       "--max-steps", str(a.steps), "--batch-size", str(batch), "--threads", str(a.threads),
                       "--embed-dim", str(a.embed), "--hidden", a.hidden, "--cross", "2", "--json"],
                      env=dict(os.environ, SEMCTR_QUIET="1")))
    return r["samples_per_s"], r.get("dense_flops_per_sample")


class Peer:
    def __init__(self, data, model, a, batch):
        import torch
        from deepctr_torch.models import DeepFM, DCN
        torch.set_num_threads(a.threads)
        fields, y, _, x = read_scd(os.path.join(data, "train.scd"))
        n = min(len(y), a.steps * batch)
        self.x = {k: v[:n] for k, v in x.items()}
        self.y = y[:n]
        cols = deepctr_columns(fields, a.embed)
        hidden = tuple(int(h) for h in a.hidden.split(","))
        kw = dict(linear_feature_columns=cols, dnn_feature_columns=cols, task="binary", device="cpu",
                  dnn_hidden_units=hidden)
        self.m = DeepFM(**kw) if model == "deepfm" else DCN(cross_num=2, cross_parameterization="matrix", **kw)
        self.m.compile(torch.optim.Adam(self.m.parameters(), lr=1e-3), "binary_crossentropy")
        self.batch = batch

    def once(self):
        t0 = time.perf_counter()
        self.m.fit(self.x, self.y, batch_size=self.batch, epochs=1, verbose=0, shuffle=True)
        return len(self.y) / (time.perf_counter() - t0)


def gemm_peak(threads):
    os.environ["OPENBLAS_NUM_THREADS"] = str(threads)
    n = 2048
    a = np.random.rand(n, n).astype(np.float32)
    b = np.random.rand(n, n).astype(np.float32)
    a @ b
    ts = []
    for _ in range(5):
        t0 = time.perf_counter()
        a @ b
        ts.append(time.perf_counter() - t0)
    return 2 * n ** 3 / min(ts)  # the best of 5: the machine's attainable peak


def main():
    global SEMCTR
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", help="a dataset config (default: --rows Criteo-shaped rows of gen-criteo)")
    ap.add_argument("--data", help="with --config: the prepared folder (default runs/NAME; prepared if missing)")
    ap.add_argument("--bin", default=SEMCTR, help="the semctr binary")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--models", default="deepfm,dcnv2")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", default="256,4096", help="batch sizes to measure")
    ap.add_argument("--embed", type=int, default=16)
    ap.add_argument("--hidden", default="256,128")
    ap.add_argument("--steps", type=int, default=30, help="training batches per measurement")
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    SEMCTR = os.path.abspath(a.bin)
    work = os.path.join(ROOT, "runs", "bench-throughput")
    os.makedirs(work, exist_ok=True)
    if a.config:
        dataset = config_name(a.config)
        data = a.data or os.path.join(ROOT, "runs", dataset)
        if not os.path.exists(os.path.join(data, "meta.json")):
            sh([SEMCTR, "prepare", "--config", a.config, "--out", data])
        rows_name = f"{dataset} ({json.load(open(os.path.join(data, 'meta.json')))['rows']['train']} train rows)"
        name = f"train-throughput-{dataset}"
    else:
        raw = os.path.join(work, f"criteo-{a.rows}.txt")
        data = os.path.join(work, f"criteo-{a.rows}")
        if not os.path.exists(raw):
            sh([SEMCTR, "gen-criteo", "--rows", str(a.rows), "--out", raw, "--seed", "7"])
        if not os.path.exists(os.path.join(data, "meta.json")):
            sh([SEMCTR, "prepare", "--config", os.path.join(ROOT, "configs", "criteo.yaml"), "--out", data],
               env=dict(os.environ, SEMCTR_CRITEO=raw))
        rows_name = f"{a.rows} Criteo-shaped rows"
        name = "train-throughput"
    peak = gemm_peak(a.threads)
    import deepctr_torch, torch
    peer = f"deepctr-torch {deepctr_torch.__version__} (torch {torch.__version__} CPU)"
    rows = []
    for model in a.models.split(","):
      for batch in map(int, a.batches.split(",")):
        p = Peer(data, model, a, batch)
        s_runs, p_runs, flops = [], [], None
        for _ in range(a.repeats):
            sps, flops = semctr_once(data, model, a, batch, work)
            s_runs.append(sps)
            p_runs.append(p.once())
            print(model, batch, "semctr", round(s_runs[-1]), "deepctr", round(p_runs[-1]), flush=True)
        s, q = float(np.median(s_runs)), float(np.median(p_runs))
        row = {"case": f"{model}, batch {batch}, D {a.embed}, DNN {a.hidden}, {a.threads} threads, "
                       f"{rows_name}", "metric": "samples/s", "semctr": round(s), "peer": peer,
               "peer_value": round(q), "ratio": round(s / q, 2), "better": "higher"}
        if flops:
            # forward + backward of a dense layer cost about 3x its forward FLOPs
            row["dense_fraction_of_peak_gemm"] = round(3 * flops * s / peak, 4)
        rows.append(row)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
    out = {"name": name, "date": datetime.date.today().isoformat(),
           "command": "python3 bench/train_throughput.py " + " ".join(sys.argv[1:]),
           "machine": {"cpu": cpu, "cores": os.cpu_count(), "gpu": None},
           "peak_gemm_flops": round(peak), "rows": rows}
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", name + ".json"), "w") as f:
        json.dump(out, f, indent=1)
    md = [f"# Training throughput: semctr vs {peer}\n",
          f"{out['date']}, {cpu}, {a.threads} threads, median of {a.repeats} alternating runs of {a.steps} "
          f"batches each (semctr: `train --max-steps`, DeepCTR-Torch: `fit` on the same rows, same ids). Peak float32 GEMM (numpy/OpenBLAS, 2048^3, same threads, best of 5): {peak / 1e9:.1f} GFLOP/s.\n",
          "| case | semctr samples/s | DeepCTR-Torch samples/s | ratio | dense FLOP/s / peak |", "|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['case']} | {r['semctr']} | {r['peer_value']} | {r['ratio']}x | "
                  f"{r.get('dense_fraction_of_peak_gemm', 'n/a')} |")
    with open(os.path.join(ROOT, "bench", "results", name + ".md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
