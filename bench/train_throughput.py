#!/usr/bin/env python3
"""Training throughput (samples/s) of semctr (train --precision f32 and bf16) vs
DeepCTR-Torch and FuxiCTR on Criteo-shaped data, side by side in one run: same
prepared rows and ids (bench/scd.py), embedding size, DNN, cross layers, batch
size and thread count. Alternates the sides and reports the median of
--repeats runs of --steps batches each. Also reports the fraction of the
machine's peak FLOP/s reached by semctr's dense layers, peak measured as large
float32 GEMM through numpy/OpenBLAS on the same threads.

FuxiCTR (PyPI fuxictr) ships its layers and BaseModel.train_step but not its
model zoo: DeepFM and DCNv2 are built from fuxictr.pytorch.layers as the
upstream zoo builds them (DeepFM: FeatureEmbedding + FactorizationMachine (LR
+ FM) + MLP_Block to 1; DCNv2 "parallel": CrossNetV2 beside an MLP_Block,
concatenated into one Linear), trained through FuxiCTR's own train_step (it
clips the gradient norm at 10 and Adam updates whole embedding tables) on its
own NpzDataLoader (num_workers=0: a worker process would compete with the
compute threads on 2 cores), embedding_regularizer 1e-5 (semctr's --l2-embed
default). Run the script with a Python that has torch, deepctr-torch and
fuxictr (e.g. a venv with --system-site-packages and `pip install fuxictr`);
without fuxictr its column says "not installed" and its value is null.

Usage: python3 bench/train_throughput.py [--rows 1000000] [--models deepfm,dcnv2] [--bin build/semctr]
       python3 bench/train_throughput.py --config CONFIG [--data DIR] ...
       python3 bench/train_throughput.py --auc [--seeds 1,2,3]: test AUC of f32 vs bf16 training on
           MovieLens-100K (configs/ml-100k.yaml), paired by seed -> train-throughput-bf16-auc.{json,md}
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


def semctr_once(data, model, a, batch, work, precision="f32"):
    out = os.path.join(work, f"tp-{model}.model")
    r = json.loads(sh([SEMCTR, "train", "--data", data, "--model", model, "--out", out, "--epochs", "1",
                       "--max-steps", str(a.steps), "--batch-size", str(batch), "--threads", str(a.threads),
                       "--embed-dim", str(a.embed), "--hidden", a.hidden, "--cross", "2", "--json",
                       "--precision", precision],
                      env=dict(os.environ, SEMCTR_QUIET="1")))
    return r["samples_per_s"], r.get("dense_flops_per_sample")


class Peer:
    """DeepCTR-Torch: DeepFM, or DCN with the matrix cross (DCN-M = DCNv2), through its own fit."""
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


def fuxictr_version():
    try:
        import fuxictr
        return fuxictr.__version__
    except ImportError:
        return None


class FuxiPeer:
    """FuxiCTR: the upstream model zoo's DeepFM / DCNv2 ("parallel") from fuxictr.pytorch.layers,
    trained through BaseModel.train_step on its NpzDataLoader (num_workers=0)."""
    def __init__(self, data, model, a, batch, work):
        import torch
        from torch import nn
        from collections import OrderedDict
        from fuxictr.features import FeatureMap
        from fuxictr.pytorch.models import BaseModel
        from fuxictr.pytorch.layers import FeatureEmbedding, MLP_Block, FactorizationMachine, CrossNetV2
        from fuxictr.pytorch.dataloaders.npz_dataloader import NpzDataLoader
        torch.set_num_threads(a.threads)
        fields, y, _, x = read_scd(os.path.join(data, "train.scd"))
        n = min(len(y), a.steps * batch)
        fmap = FeatureMap("bench", work)
        fmap.default_emb_dim = a.embed
        fmap.labels = ["label"]
        cols = {}
        for f in fields:
            name = f["name"]
            if f["kind"] == "numeric":
                spec = {"type": "numeric", "source": ""}
            elif f["kind"] == "categorical":
                spec = {"type": "categorical", "source": "", "vocab_size": f["vocab_size"], "padding_idx": 0}
            else:
                pool = "layers.MaskedAveragePooling()" if f["pooling"] == 0 else "layers.MaskedSumPooling()"
                spec = {"type": "sequence", "source": "", "vocab_size": f["vocab_size"], "padding_idx": 0,
                        "max_len": f["width"], "feature_encoder": pool}
            if f["share_with"] >= 0:
                spec["share_embedding"] = fields[f["share_with"]]["name"]
            fmap.features[name] = spec
            cols[name] = x[name][:n]
        fmap.num_fields = len(fmap.features)
        fmap.set_column_index()
        cols["label"] = y[:n]
        path = os.path.join(work, f"fuxi-{model}-{batch}.npz")
        np.savez(path, **cols)
        hidden = [int(h) for h in a.hidden.split(",")]
        kw = dict(gpu=-1, verbose=0, model_root=work, metrics=["AUC"], embedding_regularizer=1e-5,
                  net_regularizer=0, optimizer="adam", loss="binary_crossentropy")

        class DeepFM(BaseModel):
            def __init__(self, feature_map, embedding_dim, hidden_units, **kwargs):
                super().__init__(feature_map, model_id="DeepFM", **kwargs)
                self.embedding_layer = FeatureEmbedding(feature_map, embedding_dim)
                self.fm = FactorizationMachine(feature_map)
                self.mlp = MLP_Block(input_dim=feature_map.sum_emb_out_dim(), output_dim=1,
                                     hidden_units=hidden_units, hidden_activations="ReLU", output_activation=None,
                                     dropout_rates=0, batch_norm=False)
                self.compile(kwargs["optimizer"], kwargs["loss"], 1e-3)
                self.reset_parameters()
                self.model_to_device()

            def forward(self, inputs):
                X = self.get_inputs(inputs)
                feature_emb = self.embedding_layer(X)
                y_pred = self.fm(X, feature_emb)
                y_pred += self.mlp(feature_emb.flatten(start_dim=1))
                return {"y_pred": self.output_activation(y_pred)}

        class DCNv2(BaseModel):
            def __init__(self, feature_map, embedding_dim, hidden_units, num_cross_layers, **kwargs):
                super().__init__(feature_map, model_id="DCNv2", **kwargs)
                self.embedding_layer = FeatureEmbedding(feature_map, embedding_dim)
                input_dim = feature_map.sum_emb_out_dim()
                self.crossnet = CrossNetV2(input_dim, num_cross_layers)
                self.parallel_dnn = MLP_Block(input_dim=input_dim, output_dim=None, hidden_units=hidden_units,
                                              hidden_activations="ReLU", output_activation=None,
                                              dropout_rates=0, batch_norm=False)
                self.fc = nn.Linear(input_dim + hidden_units[-1], 1)
                self.compile(kwargs["optimizer"], kwargs["loss"], 1e-3)
                self.reset_parameters()
                self.model_to_device()

            def forward(self, inputs):
                X = self.get_inputs(inputs)
                feature_emb = self.embedding_layer(X, flatten_emb=True)
                final_out = torch.cat([self.crossnet(feature_emb), self.parallel_dnn(feature_emb)], dim=-1)
                return {"y_pred": self.output_activation(self.fc(final_out))}

        if model == "deepfm":
            self.m = DeepFM(fmap, a.embed, hidden, **kw)
        else:
            self.m = DCNv2(fmap, a.embed, hidden, 2, **kw)
        self.m._max_gradient_norm = 10.0  # BaseModel.fit's default, read by train_step
        self.loader = NpzDataLoader(fmap, path, batch_size=batch, shuffle=True, num_workers=0)
        self.n = n

    def once(self):
        self.m.train()
        t0 = time.perf_counter()
        for batch_data in self.loader:
            self.m.train_step(batch_data).item()
        return self.n / (time.perf_counter() - t0)


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
    ap.add_argument("--auc", action="store_true", help="test AUC of f32 vs bf16 training on ml-100k instead")
    ap.add_argument("--seeds", default="1,2,3", help="with --auc")
    a = ap.parse_args()
    SEMCTR = os.path.abspath(a.bin)
    if a.auc:
        return auc_main(a)
    work = os.path.join(ROOT, "runs", "bench-throughput")
    os.makedirs(work, exist_ok=True)
    if a.config:
        dataset = config_name(a.config)
        data = a.data or os.path.join(ROOT, "runs", dataset)
        if not os.path.exists(os.path.join(data, "meta.json")):
            sh([SEMCTR, "prepare", "--config", a.config, "--out", data])
        rows_name = f"{dataset} ({json.load(open(os.path.join(data, 'meta.json')))['rows']['train']} train rows)"
        name_ = f"train-throughput-{dataset}"
    else:
        raw = os.path.join(work, f"criteo-{a.rows}.txt")
        data = os.path.join(work, f"criteo-{a.rows}")
        if not os.path.exists(raw):
            sh([SEMCTR, "gen-criteo", "--rows", str(a.rows), "--out", raw, "--seed", "7"])
        if not os.path.exists(os.path.join(data, "meta.json")):
            sh([SEMCTR, "prepare", "--config", os.path.join(ROOT, "configs", "criteo.yaml"), "--out", data],
               env=dict(os.environ, SEMCTR_CRITEO=raw))
        rows_name = f"{a.rows} Criteo-shaped rows"
        name_ = "train-throughput"
    meta = json.load(open(os.path.join(data, "meta.json")))
    n_ids = sum(f.get("vocab_size", 0) for f in meta["fields"])
    peak = gemm_peak(a.threads)
    import deepctr_torch, torch
    peer = f"deepctr-torch {deepctr_torch.__version__} (torch {torch.__version__} CPU)"
    fv = fuxictr_version()
    fpeer = f"fuxictr {fv} (torch {torch.__version__} CPU)" if fv else "fuxictr (not installed)"
    rows = []
    for model in a.models.split(","):
      for batch in map(int, a.batches.split(",")):
        p = Peer(data, model, a, batch)
        fp = FuxiPeer(data, model, a, batch, work) if fv else None
        runs = {"f32": [], "bf16": [], "deepctr": [], "fuxictr": []}
        flops = None
        for _ in range(a.repeats):
            sps, flops = semctr_once(data, model, a, batch, work, "f32")
            runs["f32"].append(sps)
            runs["deepctr"].append(p.once())
            runs["bf16"].append(semctr_once(data, model, a, batch, work, "bf16")[0])
            if fp:
                runs["fuxictr"].append(fp.once())
            print(model, batch, {k: round(v[-1]) for k, v in runs.items() if v}, flush=True)
        med = {k: (float(np.median(v)) if v else None) for k, v in runs.items()}
        case = (f"{model}, batch {batch}, D {a.embed}, DNN {a.hidden}, {a.threads} threads, {rows_name}, "
                f"{n_ids} ids")
        for prec in ("f32", "bf16"):
            s = med[prec]
            for name, q in ((peer, med["deepctr"]), (fpeer, med["fuxictr"])):
                row = {"case": f"{case}, semctr --precision {prec}", "metric": "samples/s", "semctr": round(s),
                       "peer": name, "peer_value": round(q) if q else None,
                       "ratio": round(s / q, 2) if q else None, "better": "higher", "ids": n_ids,
                       "runs": {k: [round(x) for x in runs[k]] for k in (prec, "deepctr" if name == peer else "fuxictr")}}
                pr = runs["deepctr" if name == peer else "fuxictr"]
                if pr:  # the rounds are paired (alternating): the median of per-round ratios resists a busy host
                    row["ratio_median_of_rounds"] = round(float(np.median([x / y for x, y in zip(runs[prec], pr)])), 2)
                if flops:
                    # forward + backward of a dense layer cost about 3x its forward FLOPs
                    row["dense_flops_per_sample_fwd"] = flops
                    row["dense_fraction_of_peak_gemm"] = round(3 * flops * s / peak, 4)
                rows.append(row)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
    out = {"name": name_, "date": datetime.date.today().isoformat(),
           "command": "python3 bench/train_throughput.py " + " ".join(sys.argv[1:]),
           "machine": {"cpu": cpu, "cores": os.cpu_count(), "gpu": None,
                       "load_average_at_end": [round(x, 2) for x in os.getloadavg()]},
           "peak_gemm_flops": round(peak), "ids": n_ids, "rows": rows}
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", name_ + ".json"), "w") as f:
        json.dump(out, f, indent=1)
    md = [f"# Training throughput: semctr vs {peer} and {fpeer}\n",
          f"{out['date']}, {cpu}, {a.threads} threads, {n_ids} ids (embedding rows over all tables), median of "
          f"{a.repeats} alternating runs of {a.steps} batches each (semctr: `train --max-steps`, f32 and "
          f"`--precision bf16`; DeepCTR-Torch: `fit` on the same rows, same ids; FuxiCTR: DeepFM / DCNv2 built "
          f"from its layers as its model zoo does, `train_step` over its NpzDataLoader, num_workers=0). "
          f"Peak float32 GEMM (numpy/OpenBLAS, 2048^3, same threads, best of 5): {peak / 1e9:.1f} GFLOP/s.\n",
          f"Load average at the end: {out['machine']['load_average_at_end']} (other processes share the 2 cores).\n",
          "| case | semctr samples/s | peer | peer samples/s | ratio of medians | median of per-round ratios | "
          "dense FLOP/s / f32 peak |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['case']} | {r['semctr']} | {r['peer']} | {r['peer_value']} | "
                  f"{str(r['ratio']) + 'x' if r['ratio'] else 'n/a'} | "
                  f"{str(r.get('ratio_median_of_rounds')) + 'x' if r.get('ratio_median_of_rounds') else 'n/a'} | "
                  f"{r.get('dense_fraction_of_peak_gemm', 'n/a')} |")
    with open(os.path.join(ROOT, "bench", "results", name_ + ".md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))


def auc_main(a):
    """Test AUC of train --precision f32 vs bf16 on MovieLens-100K, the same seeds, paired."""
    data = a.data or os.path.join(ROOT, "runs", "ml-100k")
    if not os.path.exists(os.path.join(data, "meta.json")):
        sh([SEMCTR, "prepare", "--config", a.config or os.path.join(ROOT, "configs", "ml-100k.yaml"), "--out", data])
    work = os.path.join(ROOT, "runs", "bench-bf16-auc")
    os.makedirs(work, exist_ok=True)
    seeds = [int(x) for x in a.seeds.split(",")]
    res, rows = {}, []
    for model in a.models.split(","):
        for prec in ("f32", "bf16"):
            for seed in seeds:
                out = os.path.join(work, f"{model}-{prec}-{seed}.model")
                t = json.loads(sh([SEMCTR, "train", "--data", data, "--model", model, "--out", out, "--seed", str(seed),
                                   "--threads", str(a.threads), "--precision", prec, "--json"],
                                  env=dict(os.environ, SEMCTR_QUIET="1")))
                e = json.loads(sh([SEMCTR, "eval", "--model", out, "--data", data, "--split", "test", "--json"],
                                  env=dict(os.environ, SEMCTR_QUIET="1")))
                res[(model, prec, seed)] = {"auc": e["auc"], "logloss": e["logloss"], "best_epoch": t["best_epoch"],
                                            "valid_auc": t["valid_auc"]}
                print(model, prec, seed, res[(model, prec, seed)], flush=True)
        d = [res[(model, "bf16", s)]["auc"] - res[(model, "f32", s)]["auc"] for s in seeds]
        for prec in ("f32", "bf16"):
            v = [res[(model, prec, s)]["auc"] for s in seeds]
            rows.append({"case": f"{model} train --precision {prec}, test AUC, seed mean of {len(seeds)}",
                         "metric": "auc", "semctr": round(float(np.mean(v)), 5), "std": round(float(np.std(v, ddof=1)), 5),
                         "per_seed": {str(s): round(res[(model, prec, s)]["auc"], 5) for s in seeds},
                         "best_epoch": {str(s): res[(model, prec, s)]["best_epoch"] for s in seeds}})
        rows.append({"case": f"{model} bf16 - f32, paired by seed", "metric": "auc difference",
                     "semctr": round(float(np.mean(d)), 5), "std": round(float(np.std(d, ddof=1)), 5),
                     "max_abs": round(float(np.max(np.abs(d))), 5),
                     "per_seed": {str(s): round(x, 5) for s, x in zip(seeds, d)},
                     "within_0.001": bool(abs(float(np.mean(d))) <= 0.001)})
    name = "train-throughput-bf16-auc"
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
    out = {"name": name, "date": datetime.date.today().isoformat(),
           "command": "python3 bench/train_throughput.py " + " ".join(sys.argv[1:]),
           "machine": {"cpu": cpu, "cores": os.cpu_count(), "gpu": None}, "dataset": "ml-100k (configs/ml-100k.yaml)",
           "rows": rows}
    with open(os.path.join(ROOT, "bench", "results", name + ".json"), "w") as f:
        json.dump(out, f, indent=1)
    md = ["# Test AUC: train --precision bf16 vs f32 (MovieLens-100K)\n",
          f"{out['date']}, {cpu}, {a.threads} threads, seeds {a.seeds}, default settings otherwise (10 epochs max, "
          f"early stop on validation AUC, patience 2); test AUC by `semctr eval` (float) of the best epoch's "
          f"weights. The differences are paired: the same seed gives both runs the same initial weights and "
          f"batch order.\n",
          "| case | AUC (mean) | std | per seed |", "|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['case']} | {r['semctr']:+.5f} | {r['std']:.5f} | "
                  + ", ".join(f"{k}: {v}" for k, v in r["per_seed"].items()) + " |"
                  if "difference" in r["metric"] else
                  f"| {r['case']} | {r['semctr']:.5f} | {r['std']:.5f} | "
                  + ", ".join(f"{k}: {v}" for k, v in r["per_seed"].items()) + " |")
    with open(os.path.join(ROOT, "bench", "results", name + ".md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
