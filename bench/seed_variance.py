#!/usr/bin/env python3
"""Where semctr's seed-to-seed spread comes from (issue 14, item 19).

On the unseen MovieLens release semctr's test AUC spread over seeds was about
twice DeepCTR-Torch's, and its logloss worse in the seeds that kept a later
epoch. This trains each backbone over several seeds under variants of the
epoch-selection rule and reports, per variant, the mean and sample std of
test AUC / logloss / ECE and which epochs the seeds kept:

  default          --monitor auc (patience 2, lr x0.1 on a plateau)
  monitor logloss  --monitor logloss
  at most E epochs --epochs E --patience 1000 --lr-decay 1, E = the median epoch the default runs
                   kept: no early stopping, no decay, the choice narrowed to epochs 1..E
  no lr decay      --lr-decay 1 (early stopping on AUC only)

If the spread shrinks when the choice of epoch is narrowed, it comes from the
selection (a seed that keeps epoch 7 instead of 2 is a different model); if it
stays, from initialisation and visiting order.

Usage: python3 bench/seed_variance.py [--config configs/ml-100k.yaml] [--data DIR] [--bin build/semctr]
       [--seeds 1,...,8] [--models deepfm,dcnv2] [--threads 2]
Writes bench/results/seed-variance-NAME.{json,md}.
"""
import os
import statistics
import sys

from benchio import ROOT, cpu_name, experiment_args, finish_args, log, machine, sh, sh_json, write_results


def train_eval(a, work, model, seed, extra):
    out = os.path.join(work, f"{model}-{seed}-{abs(hash(tuple(extra))) % 10**8}.model")
    t = sh_json([a.bin, "train", "--data", a.data, "--model", model, "--seed", seed, "--out", out, "--threads",
                 a.threads, "--json", *extra])
    e = sh_json([a.bin, "eval", "--model", out, "--data", a.data, "--split", "test", "--json"])
    return {"best_epoch": t["best_epoch"], "epochs_run": t["epochs_run"], "auc": e["auc"], "logloss": e["logloss"],
            "ece": e["ece"]}


def summary(runs):
    out = {}
    for k in ("auc", "logloss", "ece"):
        v = [r[k] for r in runs]
        out[k] = {"mean": statistics.fmean(v), "std": statistics.stdev(v) if len(v) > 1 else None}
    out["best_epochs"] = [r["best_epoch"] for r in runs]
    return out


def main():
    ap, argv, extra = experiment_args(__doc__)
    ap.set_defaults(seeds="1,2,3,4,5,6,7,8")
    a = finish_args(ap, argv, extra)
    if a.self_test:
        s = summary([{"auc": 0.7, "logloss": 0.6, "ece": 0.02, "best_epoch": 2},
                     {"auc": 0.72, "logloss": 0.58, "ece": 0.04, "best_epoch": 3}])
        assert abs(s["auc"]["mean"] - 0.71) < 1e-12 and abs(s["auc"]["std"] - 0.0141421356) < 1e-9, s
        assert s["best_epochs"] == [2, 3]
        print("self-test passed")
        return 0
    work = os.path.join(ROOT, "runs", f"seed-variance-{a.dataset}")
    os.makedirs(work, exist_ok=True)
    res = {}
    for model in a.models:
        res[model] = {}
        variants = [("default", []), ("monitor logloss", ["--monitor", "logloss"]),
                    ("no lr decay", ["--lr-decay", "1"])]
        for name, flags in variants:
            res[model][name] = [train_eval(a, work, model, s, flags + a.extra) for s in a.seeds]
            log(f"{model} {name}: {summary(res[model][name])}")
        e = int(statistics.median(r["best_epoch"] for r in res[model]["default"]))
        name = f"at most {e} epochs"
        res[model][name] = [train_eval(a, work, model, s, ["--epochs", str(e), "--patience", "1000", "--lr-decay", "1"]
                                       + a.extra) for s in a.seeds]
        log(f"{model} {name}: {summary(res[model][name])}")
    md = [f"# Seed spread of semctr on {a.dataset}: where it comes from\n",
          f"{cpu_name()}, {a.threads} threads, seeds {','.join(map(str, a.seeds))}, `{a.command}`. Test split; "
          "mean ± sample std over seeds; *kept* = the epoch each seed's run kept (the best on validation).\n",
          "| backbone | variant | AUC | logloss | ECE | kept |", "|---|---|---|---|---|---|"]
    rows = []
    for model, by in res.items():
        for name, runs in by.items():
            s = summary(runs)
            md.append(f"| {model} | {name} | {s['auc']['mean']:.4f} ± {s['auc']['std']:.4f} | "
                      f"{s['logloss']['mean']:.4f} ± {s['logloss']['std']:.4f} | "
                      f"{s['ece']['mean']:.4f} ± {s['ece']['std']:.4f} | {s['best_epochs']} |")
            for k in ("auc", "logloss", "ece"):
                rows.append({"case": f"{a.dataset} / {model} / {name}", "metric": k, "semctr": s[k]["mean"],
                             "std": s[k]["std"], "n_seeds": len(runs), "best_epochs": s["best_epochs"],
                             "per_seed": runs, "peer": None, "peer_value": None})
    print(write_results(f"seed-variance-{a.dataset}",
                        {"name": f"seed-variance-{a.dataset}", "command": a.command, "machine": machine(),
                         "dataset": a.dataset, "seeds": a.seeds, "models": a.models, "rows": rows}, md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
