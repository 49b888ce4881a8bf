"""What every bench script records (../shared/BENCH.md): the machine, and the
result written twice under bench/results/ (NAME.json for machines, NAME.md
for people)."""
import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import xml.dom.minidom

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            return next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        return platform.machine()


def machine():
    """The "machine" object of a result: CPU, cores, no GPU, load average at the end."""
    return {"cpu": cpu_name(), "cores": os.cpu_count(), "gpu": None,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()]}


def write_results(name, out, md_lines):
    """bench/results/NAME.json (out) and NAME.md (md_lines joined); returns the Markdown."""
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, name + ".json"), "w") as f:
        json.dump(out, f, indent=1)
    md = "\n".join(md_lines) + "\n"
    with open(os.path.join(RESULTS, name + ".md"), "w") as f:
        f.write(md)
    return md


# ---- paired multi-seed experiments (elec_experiment.py, msd_experiment.py) ----
#
# results[backbone][variant][seed] = {"auc", "gauc", "logloss"} (cold variants: + "rows"),
# variant "base" and "base cold" the plain backbone of the same seed. A metric that
# the binary reports as -1 (AUC undefined: one class, or an empty slice) is None here.

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METRICS = ("auc", "gauc", "logloss")
HIGHER = {"auc": True, "gauc": True, "logloss": False}


def experiment_args(doc, argv=None):
    """The options both experiments take; the arguments after `--` are returned as a.extra."""
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=os.path.join(ROOT, "configs", "ml-100k.yaml"))
    ap.add_argument("--data", help="prepared dataset (default runs/NAME, NAME the config's name:; prepared if missing)")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "semctr"))
    ap.add_argument("--seeds", default="1,2,3,4,5")
    ap.add_argument("--models", default="deepfm,dcnv2")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cold", type=int, default=5, help="cold-start slice: items with <= N train interactions")
    ap.add_argument("--tag", help="file the results as NAME-TAG (e.g. a run with another --lm after `--`)")
    ap.add_argument("--self-test", action="store_true", help="check the aggregation on hand-made results, run nothing")
    return ap, argv, extra


def finish_args(ap, argv, extra):
    a = ap.parse_args(argv)
    a.extra = extra
    if a.self_test:
        return a
    a.dataset = config_name(a.config)
    if a.tag and not re.fullmatch(r"[A-Za-z0-9._-]+", a.tag):
        sys.exit(f"--tag {a.tag!r}: letters, digits, '.', '_' and '-' only (it names result files)")
    a.data = a.data or os.path.join(ROOT, "runs", a.dataset)
    a.seeds = [int(s) for s in a.seeds.split(",")]
    a.models = a.models.split(",")
    a.command = " ".join(["python3", os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:])
    if not os.path.exists(os.path.join(a.data, "train.scd")):
        log(f"preparing {a.data} from {a.config}")
        sh([a.bin, "prepare", "--config", a.config, "--out", a.data])
    return a


def config_name(path):
    """The dataset's name: the config's top-level `name:`."""
    with open(path) as f:
        m = re.search(r"^name:\s*['\"]?([^'\"#\s]+)", f.read(), re.M)
    if not m:
        sys.exit(f"{path}: no top-level 'name:' (the dataset name the results are filed under)")
    return m.group(1)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def sh(cmd, **env):
    """Run cmd (logs off); its stdout, or exit naming the command and its stderr."""
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                       env=dict(os.environ, SEMCTR_QUIET="1", **env))
    if r.returncode:
        sys.exit(f"failed ({r.returncode}): {' '.join(map(str, cmd))}\n{r.stderr}{r.stdout[-2000:]}")
    return r.stdout


def sh_json(cmd):
    out = sh(cmd)
    try:
        return json.loads(out)
    except json.JSONDecodeError as e:
        sys.exit(f"{' '.join(map(str, cmd))}: stdout is not one JSON object ({e}):\n{out[-2000:]}")


def need(obj, *path, src="semctr"):
    """obj[path[0]][path[1]]...; a missing key exits naming the key and the command."""
    for k in path:
        if not isinstance(obj, dict) or k not in obj:
            sys.exit(f"{src}: its JSON has no {''.join(f'[{p!r}]' for p in path)} (missing {k!r})")
        obj = obj[k]
    return obj


def metrics(obj, *path, src="semctr", rows=False):
    """The {auc, gauc, logloss} (and rows) at obj[path...]; -1 (undefined) becomes None."""
    m = need(obj, *path, src=src)
    out = {k: need(m, k, src=f"{src} {'.'.join(path)}") for k in METRICS + (("rows",) if rows else ())}
    for k in METRICS:
        if out[k] is not None and out[k] < 0:
            out[k] = None
    return out


def base_run(a, work, model, seed):
    """The plain backbone of this seed: train, then eval --cold; returns (all, cold)."""
    out = os.path.join(work, f"{model}-base-{seed}.model")
    sh([a.bin, "train", "--data", a.data, "--model", model, "--seed", seed, "--out", out, "--threads", a.threads])
    return eval_run(a, out)


def eval_run(a, model_file, *extra):
    cmd = [a.bin, "eval", "--model", model_file, "--data", a.data, "--split", "test", "--json", "--cold", a.cold,
           "--threads", a.threads, *extra]
    e = sh_json(cmd)
    src = f"semctr eval --model {model_file}"
    return metrics(e, src=src), metrics(e, "cold", src=src, rows=True)


def same_slice(cold, ref, what):
    """Every cold slice of a seed must be the same rows as eval --cold's."""
    if cold["rows"] != ref["rows"]:
        sys.exit(f"{what}: its cold-start slice has {cold['rows']} rows, `semctr eval --cold` has {ref['rows']}: "
                 f"not the same slice (pass the method's cold threshold / item field after --)")


TIE = 1e-9


def paired(values, base, metric):
    """One metric of a variant over seeds, paired with the same seeds' base; None values
    (undefined) are left out of the statistics."""
    per_seed, deltas, vals, won = [], [], [], 0
    for s in sorted(values):
        v, b = values[s][metric], base[s][metric]
        d = v - b if v is not None and b is not None else None
        per_seed.append({"seed": s, "value": v, "delta": d})
        if v is not None:
            vals.append(v)
        if d is not None:
            deltas.append(d)
            # identical models (a guard that served the plain backbone) tie: floating-point noise is no win
            won += d > TIE if HIGHER[metric] else d < -TIE
    return {"semctr": statistics.fmean(vals) if vals else None,
            "std": statistics.stdev(vals) if len(vals) > 1 else None,
            "n_seeds": len(vals),
            "delta_vs_base": statistics.fmean(deltas) if deltas else None,
            "seeds_won": won, "seeds_paired": len(deltas), "per_seed": per_seed}


def result_rows(dataset, results, order):
    """BENCH.md rows: per backbone, variant (in order, then their cold versions) and metric."""
    rows = []
    for model, res in results.items():
        for cold in ("", " cold"):
            base = res["base" + cold]
            for v in order:
                name = v + cold
                if name not in res:
                    continue
                if set(res[name]) != set(base):
                    sys.exit(f"{model} / {name}: seeds {sorted(res[name])}, base has {sorted(base)}")
                for metric in METRICS:
                    r = {"case": f"{dataset} / {model} / {name}", "metric": metric}
                    r.update(paired(res[name], base, metric))
                    if name.startswith("base"):
                        r["delta_vs_base"], r["seeds_won"] = None, None
                    if cold:
                        r["rows"] = next(iter(res[name].values()))["rows"]
                    r.update({"better": "higher" if HIGHER[metric] else "lower", "peer": None, "peer_value": None})
                    rows.append(r)
    return rows


def fmt(x, spec="{:.4f}"):
    return "n/a" if x is None else spec.format(x)


def md_tables(rows, models):
    """One Markdown table per backbone: mean ± std, mean paired delta and seeds won per metric."""
    out = []
    for model in models:
        out += [f"\n### {model}\n",
                "| variant | AUC | Δ AUC | won | gAUC | Δ gAUC | won | logloss | Δ logloss | won |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        mine = [r for r in rows if r["case"].split(" / ")[1] == model]
        for case in dict.fromkeys(r["case"] for r in mine):
            by = {r["metric"]: r for r in mine if r["case"] == case}
            name = case.split(" / ", 2)[2] + (f" ({by['auc']['rows']} rows)" if "rows" in by["auc"] else "")
            cells = []
            for m in METRICS:
                r = by[m]
                if r["seeds_won"] is None:  # the base itself
                    delta, won = "—", ""
                else:
                    delta, won = fmt(r["delta_vs_base"], "{:+.4f}"), f"{r['seeds_won']}/{r['seeds_paired']}"
                cells += [f"{fmt(r['semctr'])} ± {fmt(r['std'])}", delta, won]
            out.append(f"| {name} | " + " | ".join(cells) + " |")
    return out


def md_preamble(title, a, extra_lines=()):
    return [f"# {title}\n",
            f"{datetime.date.today().isoformat()}, {cpu_name()}, {a.threads} threads, `{a.command}`.\n",
            f"Dataset `{a.dataset}` ({os.path.relpath(a.config, ROOT)}), test split, seeds "
            f"{','.join(map(str, a.seeds))}. Each cell: mean ± sample std over seeds; **Δ** = mean over seeds of "
            f"(variant − the same seed's base), a plain difference for every metric (so for logloss a negative Δ is "
            f"the improvement); **won** = seeds where the variant beat the same seed's base by more than 1e-9 (higher AUC/gAUC, lower "
            f"logloss) / seeds compared. *cold* rows: the cold-start slice, test rows whose item has at most "
            f"{a.cold} interactions in the train split (unseen items included), compared with *base cold*; AUC "
            f"undefined on a slice (one class) counts as n/a."
            + (f" Extra training arguments: `{' '.join(a.extra)}`." if a.extra else "") + "\n", *extra_lines]


def svg_deltas(rows, path, title):
    """Δ AUC vs base per backbone and variant (bar = mean, dots = seeds); overall and cold panels."""
    panels = []
    for cold in (False, True):
        sel = [r for r in rows if r["metric"] == "auc" and r["delta_vs_base"] is not None
               and r["case"].endswith(" cold") == cold]
        if sel:
            panels.append(("cold-start slice" if cold else "whole test split", sel))
    W, label_w, row_h, top, right = 800, 330, 22, 40, 45
    H = top + sum(40 + row_h * len(sel) for _, sel in panels) + 30
    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="13">{_esc(title)}</text>',
         f'<text x="{W / 2}" y="33" text-anchor="middle" fill="#555">test AUC of the variant minus the same '
         f'seed\'s base backbone; bar: mean over seeds, dots: seeds</text>']
    y = top
    for name, sel in panels:
        ds = [p["delta"] for r in sel for p in r["per_seed"] if p["delta"] is not None] + [0.0]
        lo, hi = min(ds), max(ds)
        pad = (hi - lo) * 0.08 or 0.001
        lo, hi = lo - pad, hi + pad
        x = lambda v: label_w + (W - label_w - right) * (v - lo) / (hi - lo)
        y += 16
        s.append(f'<text x="10" y="{y}" font-weight="bold">{name}</text>')
        y0 = y + 6
        for k in range(5):
            v = lo + (hi - lo) * k / 4
            s.append(f'<line x1="{x(v):.1f}" x2="{x(v):.1f}" y1="{y0}" y2="{y0 + row_h * len(sel)}" stroke="#eee"/>'
                     f'<text x="{x(v):.1f}" y="{y0 + row_h * len(sel) + 12}" text-anchor="middle" fill="#555">'
                     f'{v:+.4f}</text>')
        s.append(f'<line x1="{x(0):.1f}" x2="{x(0):.1f}" y1="{y0}" y2="{y0 + row_h * len(sel)}" stroke="black"/>')
        for i, r in enumerate(sel):
            yc = y0 + row_h * i + row_h / 2
            d = r["delta_vs_base"]
            color = "#2e7d32" if d > 0 else "#c62828"
            s.append(f'<text x="{label_w - 8}" y="{yc + 4:.1f}" text-anchor="end">'
                     f'{_esc(r["case"].split(" / ", 1)[1])}: Δ {d:+.4f}, '
                     f'won {r["seeds_won"]}/{r["seeds_paired"]}</text>')
            s.append(f'<rect x="{min(x(0), x(d)):.1f}" y="{yc - 6:.1f}" width="{abs(x(d) - x(0)):.1f}" height="12" '
                     f'fill="{color}" fill-opacity="0.35"/>')
            for p in r["per_seed"]:
                if p["delta"] is not None:
                    s.append(f'<circle cx="{x(p["delta"]):.1f}" cy="{yc:.1f}" r="3" fill="{color}">'
                             f'<title>seed {p["seed"]}: {p["delta"]:+.5f}</title></circle>')
        y = y0 + row_h * len(sel) + 24
    s.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(s) + "\n")


def _esc(t):
    return str(t).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_experiment(name, a, rows, md_lines, extra=None):
    """bench/results/NAME.json, .md and .svg; returns the Markdown."""
    out = {"name": name, "date": datetime.date.today().isoformat(), "command": a.command, "machine": machine(),
           "dataset": a.dataset, "config": os.path.relpath(a.config, ROOT), "seeds": a.seeds, "models": a.models,
           "cold_max_train_interactions": a.cold, "extra_train_args": a.extra, **(extra or {}), "rows": rows}
    md = write_results(name, out, md_lines)
    svg_deltas(rows, os.path.join(RESULTS, name + ".svg"), md_lines[0].lstrip("# ").strip())
    return md


def self_test_rows():
    """Aggregation on hand-made results: paired deltas, seeds won, None handling, md and svg."""
    m = lambda auc, gauc, ll, rows=None: {"auc": auc, "gauc": gauc, "logloss": ll, **({"rows": rows} if rows else {})}
    res = {"deepfm": {
        "base": {1: m(0.70, 0.68, 0.60), 2: m(0.72, 0.70, 0.58)},
        "v": {1: m(0.71, 0.67, 0.59), 2: m(0.71, 0.71, 0.57)},
        "base cold": {1: m(0.60, None, 0.70, 9), 2: m(0.62, None, 0.69, 9)},
        "v cold": {1: m(0.65, None, 0.71, 9), 2: m(None, None, 0.68, 9)}}}
    rows = result_rows("toy", res, ["base", "v"])
    by = {(r["case"], r["metric"]): r for r in rows}
    r = by[("toy / deepfm / v", "auc")]
    assert abs(r["semctr"] - 0.71) < 1e-12 and r["std"] == 0 and r["n_seeds"] == 2, r
    assert abs(r["delta_vs_base"] - 0.0) < 1e-12 and r["seeds_won"] == 1 and r["seeds_paired"] == 2, r
    r = by[("toy / deepfm / v", "logloss")]
    assert abs(r["delta_vs_base"] + 0.01) < 1e-12 and r["seeds_won"] == 2, r  # lower logloss wins, delta stays v - base
    r = by[("toy / deepfm / v cold", "auc")]
    assert r["n_seeds"] == 1 and r["seeds_paired"] == 1 and abs(r["delta_vs_base"] - 0.05) < 1e-12 and r["rows"] == 9, r
    r = by[("toy / deepfm / v cold", "gauc")]
    assert r["semctr"] is None and r["delta_vs_base"] is None and r["seeds_won"] == 0, r
    b = by[("toy / deepfm / base", "auc")]
    assert b["delta_vs_base"] is None and b["seeds_won"] is None and abs(b["std"] - 0.0141421356) < 1e-9, b
    assert [x["case"] for x in rows[::3]] == ["toy / deepfm / " + v for v in ("base", "v", "base cold", "v cold")]
    md = "\n".join(md_tables(rows, ["deepfm"]))
    assert "| base | 0.7100 ± 0.0141 | — |  |" in md and "| v | 0.7100 ± 0.0000 | +0.0000 | 1/2 |" in md, md
    assert "v cold (9 rows)" in md and "n/a" in md, md
    assert metrics({"t": {"auc": -1, "gauc": 0.5, "logloss": 0.6}}, "t") == m(None, 0.5, 0.6)
    with tempfile.TemporaryDirectory() as d:
        svg_deltas(rows, os.path.join(d, "x.svg"), "toy <test>")
        xml.dom.minidom.parse(os.path.join(d, "x.svg"))  # well-formed
    return rows
