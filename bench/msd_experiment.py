#!/usr/bin/env python3
"""MSD on MovieLens-100K: the base backbone, + item level, + user level,
+ both levels, + both levels and frequency-adaptive history fusion; DeepFM and
DCNv2, 3 seeds each; overall and on the cold-start slice; plus the serving
latency per 100 rows of the plain backbone, MSD with table lookups, and MSD
with new items encoded on the fly.

Protocol (mirrors bench/elec_experiment.py): configs/ml-100k.yaml (label
rating >= 4, split by time 80/10/10, vocabularies from train), semctr train
defaults (Adam, batch 256, lr 1e-3, early stopping on validation AUC,
patience 2), test metrics from the best validation epoch. Texts per level from
--texts DIR (`semctr extract` output: item.tsv, user.tsv); entities missing
there get their raw entity text (ELEC's entity textualisation), counted in the
result. Encoder: all-MiniLM-L6-v2 (frozen, mean-pooled, not normalised). The
base backbone is trained by the same loop with --msd-levels none. Cold-start
slice: test rows whose item has <= 5 interactions in the train split
(including items never seen in train); new users/items of the test split get
their vector from the encoder over their raw entity text (as serving does for
a new item).

Usage: python3 bench/msd_experiment.py [--texts DIR (default bench/results/msd-extract, the committed
       `semctr extract` output; a missing DIR = raw entity texts only)] [--models deepfm,dcnv2] [--seeds 1,2,3]
Writes docs/msd-results.md, docs/msd-results.svg, bench/results/msd-ml100k.{json,md}.
"""
import argparse, csv, datetime, json, os, subprocess, sys
import numpy as np

from benchio import cpu_name

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEMCTR = os.path.join(ROOT, "build", "semctr")
VARIANTS = [  # (name, --msd-levels)
    ("base backbone", "none"),
    ("+ item level", "item"),
    ("+ user level", "user"),
    ("+ item and user levels", "item,user"),
    ("+ both levels + history fusion (MSD)", "item,user,fusion"),
]


def sh(cmd, **env):
    r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, SEMCTR_QUIET="1", **env))
    if r.returncode:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr}")
    return r.stdout


def serving_inputs(work):
    """Raw request rows: the last 1,000 interactions by time (known items), and
    the same users with items that are not in any table (new ids) but carry
    their catalogue text in item_text (new items, encoded on the fly)."""
    data = os.environ.get("SEMCTR_DATA", os.path.join(ROOT, "..", "shared", "data"))
    rows = [l.split("\t") for l in open(os.path.join(data, "ml-100k", "u.data"))]
    rows.sort(key=lambda r: int(r[3]))
    rows = rows[-1000:]
    genres = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
              "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western"]
    items = {}
    for l in open(os.path.join(data, "ml-100k", "u.item"), encoding="latin-1"):
        f = l.rstrip("\n").split("|")
        g = ", ".join(genres[i] for i in range(19) if f[5 + i] == "1")
        items[f[0]] = f"Title is {f[1]}. Release date is {f[2]}. Genres is {g}."
    known, new = os.path.join(work, "serve-known.csv"), os.path.join(work, "serve-new.csv")
    with open(known, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["user_id", "item_id"])
        for r in rows:
            w.writerow([r[0], r[1]])
    with open(new, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["user_id", "item_id", "item_text"])
        for k, r in enumerate(rows):
            w.writerow([r[0], f"new-{k}", items[r[1]]])
    return known, new


def bench_serve(model, inp, extra=(), **env):
    out = sh([SEMCTR, "bench-serve", "--model", model, "--input", inp, "--batch", "100", "--seconds", "2"] + list(extra),
             **env)
    return json.loads(out.strip().splitlines()[-1])["p50_ms"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", default=os.path.join(ROOT, "bench", "results", "msd-extract"))
    ap.add_argument("--models", default="deepfm,dcnv2")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--encoder", default=os.path.expanduser("~/.cache/semctr/models/all-MiniLM-L6-v2"))
    a = ap.parse_args()
    data = os.path.join(ROOT, "runs", "ml-100k")
    work = os.path.join(ROOT, "runs", "msd-experiment")
    os.makedirs(work, exist_ok=True)
    if not os.path.exists(os.path.join(data, "train.scd")):
        sh([SEMCTR, "prepare", "--config", os.path.join(ROOT, "configs", "ml-100k.yaml"), "--out", data])
    texts = ["--msd-texts", a.texts] if os.path.isdir(a.texts) else []
    res = {}  # (model, variant, "all"|"cold") -> list of metric dicts
    sources = {}
    lat = {}
    common = ["--threads", str(a.threads)]
    for model in a.models.split(","):
        L = lat.setdefault(model, {"plain_in_train": [], "msd_in_train": []})
        for seed in map(int, a.seeds.split(",")):
            for name, levels in VARIANTS:
                out = os.path.join(work, f"{model}-{levels.replace(',', '+')}-{seed}.model")
                info = json.loads(sh([SEMCTR, "train", "--method", "msd", "--msd-levels", levels, "--data", data,
                                      "--model", model, "--out", out, "--seed", str(seed), "--json",
                                      "--msd-encoder", a.encoder] + texts + common))
                res.setdefault((model, name, "all"), []).append(info["test"]["all"])
                res.setdefault((model, name, "cold"), []).append(info["test"]["cold"])
                for lv in ("item", "user"):
                    if lv in info["msd"]:
                        sources[lv] = info["msd"][lv]
                if levels == "item,user,fusion":
                    L["plain_in_train"].append(info["latency_ms_per_100"]["plain_backbone"])
                    L["msd_in_train"].append(info["latency_ms_per_100"]["msd_lookups"])
                    L.setdefault("fusion", []).append(info["msd"]["fusion"])
                print(model, seed, name, round(info["test"]["all"]["auc"], 5), round(info["test"]["cold"]["auc"], 5),
                      flush=True)
        # serving latency through the C API (semctr bench-serve), 100 rows per call, p50
        known, new = serving_inputs(work)
        new100 = os.path.join(work, "serve-new-100.csv")  # one call's worth: every later call repeats its items
        with open(new) as f, open(new100, "w") as g:
            g.writelines(l for k, l in enumerate(f) if k <= 100)
        plain = os.path.join(work, f"{model}-none-1.model")
        msd = os.path.join(work, f"{model}-item+user+fusion-1.model")
        for k in range(3):  # alternate the cases, 3 rounds
            L.setdefault("serve_plain", []).append(bench_serve(plain, known))
            L.setdefault("serve_msd_lookup", []).append(bench_serve(msd, known))
            # every call encodes (the new-item cache off), then recurring new items (cache on: lookups after the first)
            L.setdefault("serve_msd_new_items", []).append(
                bench_serve(msd, new, ["--encoder", a.encoder], SEMCTR_NEW_ITEM_CACHE="0"))
            L.setdefault("serve_msd_new_items_cached", []).append(bench_serve(msd, new100, ["--encoder", a.encoder]))
    write_results(a, res, lat, sources, bool(texts))


def write_results(a, res, lat, sources, have_texts):
    models = a.models.split(",")
    rows, md_rows = [], {"all": [], "cold": []}
    for model in models:
        for part in ("all", "cold"):
            base_auc = np.mean([m["auc"] for m in res[(model, "base backbone", part)]])
            for name, _ in VARIANTS:
                ms = res[(model, name, part)]
                for metric in ("auc", "gauc", "logloss"):
                    v = np.array([m[metric] for m in ms])
                    rows.append({"case": f"{model}, {name}, test {'cold-start slice' if part == 'cold' else 'all'}, "
                                         f"seed mean of {len(v)}", "metric": metric,
                                 "semctr": round(float(v.mean()), 5), "std": round(float(v.std()), 5),
                                 "peer": None, "peer_value": None})
                auc = np.array([m["auc"] for m in ms])
                g = np.array([m["gauc"] for m in ms])
                ll = np.array([m["logloss"] for m in ms])
                rel = ((auc.mean() - 0.5) / (base_auc - 0.5) - 1) * 100
                n = int(ms[0]["rows"])
                md_rows[part].append(f"| {model} | {name} | {auc.mean():.4f} ± {auc.std():.4f} | "
                                     f"{g.mean():.4f} ± {g.std():.4f} | {ll.mean():.4f} ± {ll.std():.4f} | "
                                     f"{rel:+.2f}% | {n} |")
    lat_rows = []
    for model, L in lat.items():
        med = {k: float(np.median(v)) for k, v in L.items() if v and k != "fusion"}
        for k, v in med.items():
            rows.append({"case": f"{model}, 100 rows per call: {k}", "metric": "ms p50" if k.startswith("serve") else "ms",
                         "semctr": round(v, 4), "peer": None, "peer_value": None, "better": "lower"})
        lat_rows.append(f"| {model} | {med['serve_plain']:.3f} | {med['serve_msd_lookup']:.3f} "
                        f"({med['serve_msd_lookup'] - med['serve_plain']:+.3f}) | {med['serve_msd_new_items']:.1f} | "
                        f"{med['serve_msd_new_items_cached']:.3f} | "
                        f"{med['plain_in_train']:.3f} | {med['msd_in_train']:.3f} |")
    cpu = cpu_name()
    today = datetime.date.today().isoformat()
    cmd = "python3 bench/msd_experiment.py " + " ".join(sys.argv[1:])
    src = "; ".join(f"{lv}: {s['entities']} entities, {s['extracted']} with extracted texts "
                    f"({s['extracted_status_fallback']} of them status fallback), {s['raw_entity_text']} with their raw "
                    f"entity text" for lv, s in sources.items())
    out = {"name": "msd-ml100k", "date": today, "command": cmd,
           "machine": {"cpu": cpu, "cores": os.cpu_count(), "gpu": None}, "texts": src, "rows": rows}
    with open(os.path.join(ROOT, "bench", "results", "msd-ml100k.json"), "w") as f:
        json.dump(out, f, indent=1)
    head = ["| backbone | variant | AUC | gAUC | logloss | RelaImpr | test rows |", "|---|---|---|---|---|---|---|"]
    md = ["# MSD on MovieLens-100K\n",
          f"{today}, {cpu}, {a.threads} threads, `{cmd}`. Test split; mean ± std over seeds {a.seeds}; RelaImpr of "
          f"the mean AUC against the base backbone of the same slice. Encoder: all-MiniLM-L6-v2 (frozen). "
          f"Protocol and definitions: docs/msd.md. The machine is shared and noisy (2 cores used by several "
          f"people): latencies are indicative; the lead reruns on a quiet machine.\n",
          f"Texts: {src}." + ("" if have_texts else " **No extraction directory was found: every entity used its "
                                                    "raw entity text (no LLM-extracted semantics).**") + "\n",
          "## Whole test split\n"] + head + md_rows["all"] + [
          "\n## Cold-start slice (test rows whose item has at most 5 train interactions)\n"] + head + md_rows["cold"] + [
          "\n## Serving latency, 100 rows per call\n",
          "`semctr bench-serve` (C API, raw cells in, 1 thread, p50 of 2 s of calls, median of 3 alternating rounds; "
          "seed-1 models): the plain backbone; the MSD model on known items (semantic fields are table lookups; "
          "in parentheses the cost over the plain backbone); the MSD model on 100 new items each encoded from its "
          "item_text by the small encoder through the stored adaptor (new-item cache off: every call encodes), and "
          "the same 100 new items in every call (cache on: after the first call they are lookups). The last two columns: the same forward "
          "without request parsing, measured by `semctr train` (median of 7, gather + lookups + forward).\n",
          "| backbone | plain (ms) | MSD lookups (ms) | MSD, 100 new items encoded (ms) | MSD, recurring new items "
          "(ms) | plain, in-process (ms) | MSD lookups, in-process (ms) |", "|---|---|---|---|---|---|---|"] + lat_rows
    text = "\n".join(md) + "\n"
    for p in (os.path.join(ROOT, "bench", "results", "msd-ml100k.md"), os.path.join(ROOT, "docs", "msd-results.md")):
        with open(p, "w") as f:
            f.write(text)
    write_svg(res, models, os.path.join(ROOT, "docs", "msd-results.svg"))
    print(text)


def write_svg(res, models, path):
    """Grouped bars of mean test AUC (± std) per variant, backbone and slice, as plain SVG."""
    colors = ["#777777", "#c9a227", "#2a7fb8", "#8fbf6a", "#2e7d32"]
    names = [v[0] for v in VARIANTS]
    groups = [(m, p) for p in ("all", "cold") for m in models]
    W, H, top, bottom = 860, 340, 30, 60
    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H + 110}" font-family="sans-serif" '
         f'font-size="11">',
         f'<text x="{W / 2}" y="16" text-anchor="middle" font-size="13">MSD on MovieLens-100K: test AUC, mean ± std '
         f'over seeds (left: whole test split, right: cold-start slice; own scale per panel)</text>']
    for pi, part in enumerate(("all", "cold")):
        gs = [g for g in groups if g[1] == part]
        aucs = [[np.mean([m["auc"] for m in res[(mo, n, part)]]) for n in names] for mo, _ in gs]
        stds = [[np.std([m["auc"] for m in res[(mo, n, part)]]) for n in names] for mo, _ in gs]
        lo = min(min(a - s_ for a, s_ in zip(r, sr)) for r, sr in zip(aucs, stds)) - 0.005
        hi = max(max(a + s_ for a, s_ in zip(r, sr)) for r, sr in zip(aucs, stds)) + 0.005
        left = 60 + pi * W / 2
        pw = W / 2 - 80
        bw = pw / (len(gs) * (len(names) + 1))
        y = lambda v: top + (H - top - bottom) * (1 - (v - lo) / (hi - lo))
        for k in range(6):
            v = lo + (hi - lo) * k / 5
            s.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eee"/>'
                     f'<text x="{left - 5}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.3f}</text>')
        for i, (mo, _) in enumerate(gs):
            x0 = left + i * (len(names) + 1) * bw + bw / 2
            for j in range(len(names)):
                x = x0 + j * bw
                s.append(f'<rect x="{x:.1f}" y="{y(aucs[i][j]):.1f}" width="{bw * 0.9:.1f}" '
                         f'height="{H - bottom - y(aucs[i][j]):.1f}" fill="{colors[j]}"/>')
                s.append(f'<line x1="{x + bw * 0.45:.1f}" x2="{x + bw * 0.45:.1f}" '
                         f'y1="{y(aucs[i][j] - stds[i][j]):.1f}" y2="{y(aucs[i][j] + stds[i][j]):.1f}" stroke="black"/>')
            s.append(f'<text x="{x0 + len(names) * bw / 2:.1f}" y="{H - bottom + 16}" text-anchor="middle" '
                     f'font-size="13">{mo}, {"all" if part == "all" else "cold"}</text>')
    for j, n in enumerate(names):
        s.append(f'<rect x="60" y="{H + j * 18}" width="12" height="12" fill="{colors[j]}"/>'
                 f'<text x="78" y="{H + j * 18 + 10}">{n}</text>')
    s.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(s))


if __name__ == "__main__":
    main()
