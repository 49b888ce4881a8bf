#!/usr/bin/env python3
"""ELEC on MovieLens-100K: base backbone, adapted LLM alone, gain network,
vanilla network without distillation, with score-level distillation only,
representation-level only, and both; DeepFM and DCNv2, 3 seeds each.

Protocol: configs/ml-100k.yaml (label rating >= 4, split by time 80/10/10,
vocabularies from train), all-MiniLM-L6-v2 as the frozen LLM (mean-pooled last
hidden state), ELEC texts per sample ("Title is ... Genres is ... Occupation is
..."), semctr train defaults otherwise (Adam, batch 256, lr 1e-3, early stopping
on validation AUC with patience 2). Test metrics from the best validation epoch.

Usage: python3 bench/elec_experiment.py [--models deepfm,dcnv2] [--seeds 1,2,3] [--granularity sample]
Writes docs/elec-results.md, docs/elec-results.svg, bench/results/elec-ml100k.{json,md}.
"""
import argparse, datetime, json, os, platform, subprocess, sys
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEMCTR = os.path.join(ROOT, "build", "semctr")
VARIANTS = [  # (name, alpha, beta)
    ("vanilla, no distillation", 0, 0),
    ("vanilla, score-level only", 1, 0),
    ("vanilla, representation-level only", 0, 1),
    ("vanilla, score + representation (ELEC)", 1, 1),
]


def sh(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, SEMCTR_QUIET="1"))
    if r.returncode:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr}")
    return r.stdout


def metrics(d):
    return {"auc": d["auc"], "gauc": d["gauc"], "logloss": d["logloss"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="deepfm,dcnv2")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--granularity", default="sample")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    data = os.path.join(ROOT, "runs", "ml-100k")
    work = os.path.join(ROOT, "runs", "elec-experiment")
    os.makedirs(work, exist_ok=True)
    if not os.path.exists(os.path.join(data, "train.scd")):
        sh([SEMCTR, "prepare", "--config", os.path.join(ROOT, "configs", "ml-100k.yaml"), "--out", data])
    res = {}  # (model, variant) -> list of metric dicts
    lat = {}  # model -> lists of latencies
    common = ["--threads", str(a.threads)]
    for model in a.models.split(","):
        L = lat.setdefault(model, {"plain": [], "vanilla": [], "exported_vanilla": [], "gain": [], "llm": []})
        for seed in map(int, a.seeds.split(",")):
            base = os.path.join(work, f"{model}-{seed}.model")
            sh([SEMCTR, "train", "--data", data, "--model", model, "--out", base, "--seed", str(seed)] + common)
            e = json.loads(sh([SEMCTR, "eval", "--model", base, "--data", data, "--split", "test", "--json"] + common))
            res.setdefault((model, "base backbone"), []).append(metrics(e))
            L["plain"].append(e["score_ms_per_1000"])
            for name, alpha, beta in VARIANTS:
                out = os.path.join(work, f"{model}-elec-{alpha}-{beta}-{seed}.model")
                info = json.loads(sh([SEMCTR, "train", "--method", "elec", "--data", data, "--model", model,
                                      "--out", out, "--seed", str(seed), "--alpha", str(alpha), "--beta", str(beta),
                                      "--elec-granularity", a.granularity, "--json"] + common +
                                     (["--elec-time-llm"] if alpha == 1 and beta == 1 else [])))
                res.setdefault((model, name), []).append(info["test"]["vanilla"])
                if alpha == 1 and beta == 1:
                    res.setdefault((model, "adapted LLM alone"), []).append(info["test"]["adapter"])
                    res.setdefault((model, "gain network (LLM + tabular)"), []).append(info["test"]["gain"])
                    L["vanilla"].append(info["latency_ms_per_1000"]["vanilla"])
                    L["gain"].append(info["latency_ms_per_1000"]["gain_given_llm_vectors"])
                    L["llm"].append(info["elec"]["llm_encode_ms_per_1000_rows"])
                    exp = os.path.join(work, f"{model}-vanilla-{seed}.model")
                    sh([SEMCTR, "export", "--model", out, "--network", "vanilla", "--out", exp])
                    ev = json.loads(sh([SEMCTR, "eval", "--model", exp, "--data", data, "--json"] + common))
                    L["exported_vanilla"].append(ev["score_ms_per_1000"])
                print(model, seed, name, info["test"]["vanilla"]["auc"], flush=True)
    order = ["base backbone", "adapted LLM alone", "gain network (LLM + tabular)"] + [v[0] for v in VARIANTS]
    rows, md_rows = [], []
    for model in a.models.split(","):
        base_auc = np.mean([m["auc"] for m in res[(model, "base backbone")]])
        for name in order:
            ms = res[(model, name)]
            for metric in ("auc", "gauc", "logloss"):
                v = np.array([m[metric] for m in ms])
                rows.append({"case": f"{model}, {name}, seed mean of {len(v)}", "metric": metric,
                             "semctr": round(float(v.mean()), 5), "std": round(float(v.std()), 5),
                             "peer": None, "peer_value": None})
            auc = np.array([m["auc"] for m in ms])
            relaimpr = ((auc.mean() - 0.5) / (base_auc - 0.5) - 1) * 100
            g = np.array([m["gauc"] for m in ms])
            ll = np.array([m["logloss"] for m in ms])
            md_rows.append(f"| {model} | {name} | {auc.mean():.4f} ± {auc.std():.4f} | {g.mean():.4f} ± {g.std():.4f} | "
                           f"{ll.mean():.4f} ± {ll.std():.4f} | {relaimpr:+.2f}% |")
    lat_rows = []
    for model, L in lat.items():
        med = {k: float(np.median(v)) for k, v in L.items() if v}
        for k, v in med.items():
            rows.append({"case": f"{model}, scoring 1,000 test rows in one batch: {k}", "metric": "ms",
                         "semctr": round(v, 3), "peer": None, "peer_value": None, "better": "lower"})
        lat_rows.append(f"| {model} | {med['plain']:.2f} | {med['exported_vanilla']:.2f} | {med['vanilla']:.2f} | "
                        f"{med['gain']:.2f} | {med['llm']:.1f} | {(med['gain'] + med['llm']) / med['vanilla']:.0f}x |")
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
    today = datetime.date.today().isoformat()
    cmd = "python3 bench/elec_experiment.py " + " ".join(sys.argv[1:])
    out = {"name": "elec-ml100k", "date": today, "command": cmd,
           "machine": {"cpu": cpu, "cores": os.cpu_count(), "gpu": None}, "rows": rows}
    with open(os.path.join(ROOT, "bench", "results", "elec-ml100k.json"), "w") as f:
        json.dump(out, f, indent=1)
    md = [f"# ELEC on MovieLens-100K\n",
          f"{today}, {cpu}, {a.threads} threads, `{cmd}`. Test split; mean ± std over seeds "
          f"{a.seeds}; RelaImpr of the mean AUC against the base backbone. LLM: all-MiniLM-L6-v2 (frozen, "
          f"mean-pooled), texts per {a.granularity}. Protocol: docs/elec.md.\n",
          "| backbone | variant | AUC | gAUC | logloss | RelaImpr |", "|---|---|---|---|---|---|"] + md_rows + [
          "\nScoring latency, milliseconds per 1,000 test rows (one batch, median over seeds of the median of 7): "
          "the plain backbone, ELEC's vanilla network exported alone, the vanilla network inside the ELEC model, "
          "the gain network with the adapted LLM given cached LLM vectors, and the language model encoding those "
          "rows' texts (what the gain network needs for texts not seen before).\n",
          "| backbone | plain | exported vanilla | vanilla | gain (vectors cached) | LLM encoding | gain+LLM / vanilla |",
          "|---|---|---|---|---|---|---|"] + lat_rows
    text = "\n".join(md) + "\n"
    for p in (os.path.join(ROOT, "bench", "results", "elec-ml100k.md"), os.path.join(ROOT, "docs", "elec-results.md")):
        with open(p, "w") as f:
            f.write(text)
    write_svg(res, a.models.split(","), order, os.path.join(ROOT, "docs", "elec-results.svg"))
    print(text)


def write_svg(res, models, order, path):
    """Grouped bars of mean test AUC (± std) per variant and backbone, as plain SVG."""
    colors = ["#777777", "#c9a227", "#2a7fb8", "#bbbbbb", "#8fbf6a", "#5aa05a", "#2e7d32"]
    aucs = [[np.mean([m["auc"] for m in res[(mo, n)]]) for n in order] for mo in models]
    stds = [[np.std([m["auc"] for m in res[(mo, n)]]) for n in order] for mo in models]
    lo = min(min(r) for r in aucs) - 0.01
    hi = max(max(r) for r in aucs) + 0.005
    W, H, left, top, bottom = 760, 360, 60, 30, 60
    bw = (W - left - 20) / (len(models) * (len(order) + 1))
    y = lambda v: top + (H - top - bottom) * (1 - (v - lo) / (hi - lo))
    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H + 150}" font-family="sans-serif" font-size="11">',
         f'<text x="{W / 2}" y="16" text-anchor="middle" font-size="13">ELEC on MovieLens-100K: test AUC (mean ± std over seeds)</text>']
    for k in range(6):
        v = lo + (hi - lo) * k / 5
        s.append(f'<line x1="{left}" x2="{W - 20}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eee"/>'
                 f'<text x="{left - 5}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.3f}</text>')
    for i, mo in enumerate(models):
        x0 = left + i * (len(order) + 1) * bw + bw / 2
        for j in range(len(order)):
            x = x0 + j * bw
            s.append(f'<rect x="{x:.1f}" y="{y(aucs[i][j]):.1f}" width="{bw * 0.9:.1f}" '
                     f'height="{H - bottom - y(aucs[i][j]):.1f}" fill="{colors[j % len(colors)]}"/>')
            s.append(f'<line x1="{x + bw * 0.45:.1f}" x2="{x + bw * 0.45:.1f}" y1="{y(aucs[i][j] - stds[i][j]):.1f}" '
                     f'y2="{y(aucs[i][j] + stds[i][j]):.1f}" stroke="black"/>')
        s.append(f'<text x="{x0 + len(order) * bw / 2:.1f}" y="{H - bottom + 16}" text-anchor="middle" '
                 f'font-size="13">{mo}</text>')
    for j, n in enumerate(order):
        s.append(f'<rect x="{left}" y="{H + j * 18}" width="12" height="12" fill="{colors[j % len(colors)]}"/>'
                 f'<text x="{left + 18}" y="{H + j * 18 + 10}">{n}</text>')
    s.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(s))


if __name__ == "__main__":
    main()
