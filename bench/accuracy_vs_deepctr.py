#!/usr/bin/env python3
"""Test AUC of semctr vs DeepCTR-Torch on a prepared dataset (MovieLens-100K
by default), identical split, features and hyper-parameters, side by side in
one run.

Both sides read the same prepared dataset (semctr prepare --config CONFIG:
configs/ml-100k.yaml labels rating >= 4 and splits by time 80/10/10):
DeepCTR-Torch gets the exact ids of the .scd files (bench/scd.py). Protocol
on both sides: Adam, batch 256, lr 1e-3, embedding 16, DNN (256, 128), L2
1e-5 on embeddings, at most 10 epochs, the epoch with the best validation AUC
is kept, lr x0.1 after an epoch without improvement, stop after 2. Three
seeds each; mean and std of test AUC/logloss.

Usage: python3 bench/accuracy_vs_deepctr.py [--config configs/ml-100k.yaml] [--data DIR]
           [--bin build/semctr] [--models deepfm,dcnv2] [--seeds 1,2,3]
--data defaults to runs/NAME (NAME: the config's name:), prepared when missing.
Writes bench/results/accuracy-deepctr.{json,md} (another dataset: accuracy-deepctr-NAME).
"""
import argparse, datetime, json, os, platform, subprocess, sys, time
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from scd import read_scd, deepctr_columns  # noqa: E402
from benchio import config_name  # noqa: E402

SEMCTR = os.path.join(ROOT, "build", "semctr")  # --bin
HP = dict(batch=256, lr=1e-3, embed=16, hidden=(256, 128), l2=1e-5, epochs=10, patience=2, decay=0.1)


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def semctr_run(data, model, seed, threads, workdir):
    out = os.path.join(workdir, f"{model}-{seed}.model")
    t0 = time.time()
    sh([SEMCTR, "train", "--data", data, "--model", model, "--out", out, "--seed", str(seed),
        "--threads", str(threads), "--batch-size", str(HP["batch"]), "--lr", str(HP["lr"]),
        "--embed-dim", str(HP["embed"]), "--hidden", ",".join(map(str, HP["hidden"])),
        "--l2-embed", str(HP["l2"]), "--epochs", str(HP["epochs"]), "--patience", str(HP["patience"]),
        "--lr-decay", str(HP["decay"]), "--cross", "2"], env=dict(os.environ, SEMCTR_QUIET="1"))
    dt = time.time() - t0
    r = json.loads(sh([SEMCTR, "eval", "--model", out, "--data", data, "--split", "test", "--json"]))
    return r["auc"], r["logloss"], dt


def deepctr_run(data, model, seed, threads):
    import torch
    from deepctr_torch.models import DeepFM, DCN
    from sklearn.metrics import roc_auc_score, log_loss
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    np.random.seed(seed)
    splits = {s: read_scd(os.path.join(data, f"{s}.scd")) for s in ("train", "valid", "test")}
    cols = deepctr_columns(splits["train"][0], HP["embed"])
    kw = dict(linear_feature_columns=cols, dnn_feature_columns=cols, task="binary", device="cpu", seed=seed,
              dnn_hidden_units=HP["hidden"], l2_reg_embedding=HP["l2"], l2_reg_linear=HP["l2"])
    if model == "deepfm":
        m = DeepFM(**kw)
    elif model == "dcnv2":
        m = DCN(cross_num=2, cross_parameterization="matrix", **kw)
    elif model == "dcn":
        m = DCN(cross_num=2, cross_parameterization="vector", **kw)
    else:
        raise SystemExit(f"no DeepCTR-Torch mapping for {model}")
    opt = torch.optim.Adam(m.parameters(), lr=HP["lr"])
    m.compile(opt, "binary_crossentropy")
    x = {s: splits[s][3] for s in splits}
    y = {s: splits[s][1] for s in splits}
    best, best_state, bad, t0 = -1, None, 0, time.time()
    for epoch in range(HP["epochs"]):
        m.fit(x["train"], y["train"], batch_size=HP["batch"], epochs=1, verbose=0, shuffle=True)
        auc = roc_auc_score(y["valid"], m.predict(x["valid"], 4096))
        if auc > best:
            best, bad = auc, 0
            best_state = {k: v.clone() for k, v in m.state_dict().items()}
        else:
            bad += 1
            for g in opt.param_groups:
                g["lr"] *= HP["decay"]
            if bad >= HP["patience"]:
                break
    dt = time.time() - t0
    m.load_state_dict(best_state)
    p = m.predict(x["test"], 4096).astype(np.float64).ravel()
    return roc_auc_score(y["test"], p), log_loss(y["test"], p), dt


def main():
    global SEMCTR
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="deepfm,dcnv2")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--config", default=os.path.join(ROOT, "configs", "ml-100k.yaml"))
    ap.add_argument("--data", help="prepared dataset (default runs/NAME, NAME the config's name:; prepared if missing)")
    ap.add_argument("--bin", default=SEMCTR, help="the semctr binary")
    ap.add_argument("--l2", type=float, default=HP["l2"], help="L2 on embeddings, both sides")
    ap.add_argument("--name", help="results file name in bench/results (default accuracy-deepctr[-NAME])")
    a = ap.parse_args()
    SEMCTR = os.path.abspath(a.bin)
    HP["l2"] = a.l2
    dataset = config_name(a.config)
    a.data = a.data or os.path.join(ROOT, "runs", dataset)
    a.name = a.name or ("accuracy-deepctr" if dataset == "ml-100k" else f"accuracy-deepctr-{dataset}")
    if not os.path.exists(os.path.join(a.data, "meta.json")):
        sh([SEMCTR, "prepare", "--config", a.config, "--out", a.data])
    meta = json.load(open(os.path.join(a.data, "meta.json")))
    work = os.path.join(ROOT, "runs", "bench-accuracy")
    os.makedirs(work, exist_ok=True)
    import deepctr_torch, torch
    peer = f"deepctr-torch {deepctr_torch.__version__} (torch {torch.__version__} CPU)"
    rows, md = [], []
    for model in a.models.split(","):
        res = {"semctr": [], "peer": []}
        for seed in map(int, a.seeds.split(",")):
            # alternate the two sides, same seed, same threads
            res["semctr"].append(semctr_run(a.data, model, seed, a.threads, work))
            res["peer"].append(deepctr_run(a.data, model, seed, a.threads))
            print(model, seed, "semctr", res["semctr"][-1], "deepctr", res["peer"][-1], flush=True)
        for k, metric in ((0, "auc"), (1, "logloss")):
            s = np.array([r[k] for r in res["semctr"]])
            p = np.array([r[k] for r in res["peer"]])
            rows.append({"case": f"{model}, {dataset} {meta['split']} split, test, mean of {len(s)} seeds", "metric": metric,
                         "semctr": round(float(s.mean()), 6), "std": round(float(s.std()), 6), "peer": peer,
                         "peer_value": round(float(p.mean()), 6), "peer_std": round(float(p.std()), 6),
                         "difference": round(float(s.mean() - p.mean()), 6),
                         "better": "higher" if metric == "auc" else "lower"})
        ts = np.median([r[2] for r in res["semctr"]])
        tp = np.median([r[2] for r in res["peer"]])
        rows.append({"case": f"{model}, {dataset}, whole training run (median over seeds)", "metric": "seconds",
                     "semctr": round(float(ts), 2), "peer": peer, "peer_value": round(float(tp), 2),
                     "ratio": round(float(tp / ts), 2), "better": "lower"})
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
    out = {"name": a.name, "date": datetime.date.today().isoformat(), "dataset": dataset, "config": a.config,
           "command": "python3 bench/accuracy_vs_deepctr.py " + " ".join(sys.argv[1:]),
           "machine": {"cpu": cpu, "cores": os.cpu_count(), "gpu": None}, "hyperparameters": HP, "rows": rows}
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", a.name + ".json"), "w") as f:
        json.dump(out, f, indent=1)
    md.append(f"# Accuracy: semctr vs {peer}\n\n{out['date']}, {cpu}, {a.threads} threads. "
              f"Dataset {dataset} ({a.config}): label {meta['label']}, split {meta['split']} "
              f"{meta['rows']['train']:,} / {meta['rows']['valid']:,} / {meta['rows']['test']:,} rows, "
              "identical prepared ids on both sides.\n"
              f"Hyper-parameters: {HP}.\n\n| case | metric | semctr | std | DeepCTR-Torch | std | difference / ratio |\n|---|---|---|---|---|---|---|")
    for r in rows:
        md.append(f"| {r['case']} | {r['metric']} | {r['semctr']} | {r.get('std', '')} | {r['peer_value']} | "
                  f"{r.get('peer_std', '')} | {r.get('difference', r.get('ratio'))} |")
    with open(os.path.join(ROOT, "bench", "results", a.name + ".md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
