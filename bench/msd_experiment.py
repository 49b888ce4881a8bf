#!/usr/bin/env python3
"""MSD against the plain backbone on one dataset, seed-paired.

For every backbone m and seed s (docs/msd.md for the method):
  base                semctr train (plain) + semctr eval --cold N
  msd                 semctr train --method msd --json (levels chosen on validation): test.all, test.cold
  msd forced LEVELS   (--forced item,user,item+user+fusion) the same with --msd-levels LEVELS
  V + loraR           (--lora R) each variant V above again with LoRA of rank R on the small encoder
                      (--msd-lora-rank R; --lora-forced-only: the forced variants only), paired with V
The kept levels and the selection (msd.levels, msd.selection) are recorded per seed, and so are each
training's wall time and, for a single training (not auto), its seconds per epoch.
Texts per level from --texts DIR (`semctr extract` output), default
bench/results/msd-extract for ml-100k when it exists, else none (raw entity texts).
Arguments after `--` go to every MSD training.

Usage: python3 bench/msd_experiment.py [--config configs/ml-100k.yaml] [--data DIR] [--bin build/semctr]
       [--seeds 1,2,3,4,5] [--models deepfm,dcnv2] [--threads 2] [--cold 5] [--forced LEVELS,...]
       [--texts DIR] [--lora R] [--lora-forced-only] [--tag TAG] [--self-test] [-- MSD ARGS]
Writes bench/results/msd-NAME.{json,md,svg}, NAME the config's `name:`.
"""
import os
import statistics
import sys
import time

from benchio import (METRICS, ROOT, fmt, base_run, experiment_args, finish_args, log, md_preamble, md_tables, metrics,
                     need, paired, result_rows, same_slice, self_test_rows, sh_json, write_experiment)


def msd_variant(info, name, src):
    """{name: metrics, name cold: metrics} of one MSD --json info, and its levels record
    (the selection is required of the auto runs only)."""
    v = {name: metrics(info, "test", "all", src=src), name + " cold": metrics(info, "test", "cold", src=src, rows=True)}
    auto = name.split(" + ")[0] == "msd"
    m = need(info, "msd", src=src)
    sel = need(info, "msd", "selection", src=src) if auto else m.get("selection")
    rec = {"levels": need(info, "msd", "levels", src=src), "selection": sel}
    if not auto:  # one training: its epochs and their wall time (training and validation)
        rec["epochs_run"] = need(m, "epochs_run", src=src)
        rec["seconds_per_epoch"] = need(m, "fit_seconds", src=src) / rec["epochs_run"]
        if "lora" in m:
            rec["lora_steps"] = need(m, "lora", "lora_steps", src=src)
    return v, rec


def variants(a):
    """(name, levels or None for auto, LoRA rank or 0) of every MSD training of a seed."""
    out = [("msd" if lv is None else f"msd forced {lv}", lv, 0) for lv in [None] + a.forced]
    out += [(f"{n} + lora{a.lora}", lv, a.lora) for n, lv, _ in out if a.lora and not (a.lora_forced_only and lv is None)]
    return out


def run_seed(a, work, model, seed, res, runs):
    res.setdefault("base", {})[seed], res.setdefault("base cold", {})[seed] = base_run(a, work, model, seed)
    rec = {}
    for name, levels, rank in variants(a):
        out = os.path.join(work, f"{model}-{name.replace(' ', '-')}-{seed}.model")
        cmd = [a.bin, "train", "--method", "msd", "--data", a.data, "--model", model, "--seed", seed, "--out", out,
               "--threads", a.threads, "--json", "--msd-cold", a.cold, *a.texts, *a.extra]
        if levels:
            cmd += ["--msd-levels", levels.replace("+", ",")]
        if rank:
            cmd += ["--msd-lora-rank", rank]
        t0 = time.monotonic()
        info = sh_json(cmd)
        v, rec[name] = msd_variant(info, name, " ".join(map(str, cmd)))
        rec[name]["wall_seconds"] = time.monotonic() - t0
        same_slice(v[name + " cold"], res["base cold"][seed], f"{model} seed {seed} {name}")
        for k, m in v.items():
            res.setdefault(k, {})[seed] = m
        log(f"{model} seed {seed} {name}: AUC {v[name]['auc']:.5f} (base {res['base'][seed]['auc']:.5f}), "
            f"levels {rec[name]['levels']}")
    runs[str(seed)] = rec


def lora_rows(dataset, results, a):
    """Each LoRA variant paired with the same variant without LoRA, seed by seed (overall and cold)."""
    rows = []
    for model, res in results.items():
        for name, _, rank in variants(a):
            if not rank:
                continue
            plain = name.rsplit(" + ", 1)[0]
            for cold in ("", " cold"):
                for metric in METRICS:
                    r = {"case": f"{dataset} / {model} / {name}{cold} vs {plain}{cold}", "metric": metric}
                    r.update(paired(res[name + cold], res[plain + cold], metric))
                    rows.append(r)
    return rows


def lora_lines(rows, runs, a):
    out = [f"\n## LoRA (rank {a.lora}) against the same variant without it, seed by seed\n",
           "Δ = mean over seeds of (with LoRA − without), won = seeds where LoRA was better.\n",
           "| backbone | comparison | AUC with LoRA | Δ AUC | won | Δ gAUC | won | Δ logloss | won |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["metric"] != "auc":
            continue
        by = {x["metric"]: x for x in rows if x["case"] == r["case"]}
        model, what = r["case"].split(" / ")[1:]
        cells = [f"{fmt(by[m]['delta_vs_base'], '{:+.4f}')} | {by[m]['seeds_won']}/{by[m]['seeds_paired']}"
                 for m in METRICS]
        out.append(f"| {model} | {what} | {fmt(r['semctr'])} ± {fmt(r['std'])} | " + " | ".join(cells) + " |")
    out += ["\n## Time per training, median over seeds\n",
            "Wall time of one `semctr train` (auto: every candidate it trains), and for a single training its "
            f"seconds per epoch (training and validation) and epochs; {a.threads} threads, on a machine shared with "
            "other work (absolute times vary with its load; compare within a backbone).\n",
            "| backbone | variant | wall s | s / epoch | epochs | LoRA steps |", "|---|---|---|---|---|---|"]
    med = lambda xs: statistics.median(xs) if xs else None
    for model, by_seed in runs.items():
        for name, _, _ in variants(a):
            recs = [by_seed[s][name] for s in by_seed]
            col = lambda k: med([r[k] for r in recs if k in r])
            out.append(f"| {model} | {name} | {fmt(col('wall_seconds'), '{:.0f}')} | "
                       f"{fmt(col('seconds_per_epoch'), '{:.1f}')} | {fmt(col('epochs_run'), '{:.0f}')} | "
                       f"{fmt(col('lora_steps'), '{:.0f}')} |")
    return out


def levels_lines(runs):
    out = ["\n## Levels kept by the selection on validation, per seed\n",
           "| backbone | seed | levels kept | candidates (levels: valid AUC) |", "|---|---|---|---|"]
    for model, by_seed in runs.items():
        for s, rec in by_seed.items():
            for name in (n for n in rec if n.split(" + ")[0] == "msd"):
                sel = ", ".join(f"{c.get('levels')}: {fmt(c.get('valid_auc'))}"
                                + "".join(f" ({k})" for k in ("kept", "chosen") if c.get(k))
                                for c in rec[name]["selection"])
                out.append(f"| {model}{name[3:]} | {s} | {rec[name]['levels']} | {sel} |")
    return out


def self_test():
    self_test_rows()
    t = {"auc": 0.7, "gauc": 0.69, "logloss": 0.6, "rows": 10}
    info = {"test": {"all": t, "cold": {**t, "auc": -1, "rows": 3}},
            "msd": {"levels": "item", "selection": [{"levels": "item", "valid_auc": 0.71, "kept": True},
                                                    {"levels": "none", "valid_auc": 0.70, "kept": False}]}}
    v, rec = msd_variant(info, "msd", "toy")
    assert v["msd cold"] == {"auc": None, "gauc": 0.69, "logloss": 0.6, "rows": 3} and rec["levels"] == "item", v
    assert "| deepfm | 1 | item | item: 0.7100 (kept), none: 0.7000 |" in levels_lines({"deepfm": {"1": {"msd": rec}}})
    # LoRA variants: paired with the same variant without LoRA; a single training's time per epoch
    class A:
        forced, lora, lora_forced_only, threads = ["item"], 8, True, 2
    assert [n for n, _, _ in variants(A)] == ["msd", "msd forced item", "msd forced item + lora8"]
    f = {"test": info["test"], "msd": {"levels": "item", "epochs_run": 4, "fit_seconds": 100.0,
                                       "lora": {"lora_steps": 12}}}
    _, r8 = msd_variant(f, "msd forced item + lora8", "toy")
    assert r8["seconds_per_epoch"] == 25.0 and r8["lora_steps"] == 12 and r8["selection"] is None, r8
    m = lambda auc: {"auc": auc, "gauc": 0.5, "logloss": 0.6, "rows": 3}
    res = {"deepfm": {"msd forced item": {1: m(0.70), 2: m(0.71)}, "msd forced item + lora8": {1: m(0.72), 2: m(0.70)},
                      "msd forced item cold": {1: m(0.6), 2: m(0.6)},
                      "msd forced item + lora8 cold": {1: m(0.61), 2: m(0.61)}}}
    rows = lora_rows("toy", res, A)
    r = next(x for x in rows if x["metric"] == "auc" and not x["case"].endswith("cold"))
    assert r["case"] == "toy / deepfm / msd forced item + lora8 vs msd forced item", r
    assert abs(r["delta_vs_base"] - 0.005) < 1e-12 and r["seeds_won"] == 1, r
    runs = {"deepfm": {s: {"msd": {"wall_seconds": 10.0}, "msd forced item": {"wall_seconds": 8.0, **r8},
                           "msd forced item + lora8": {"wall_seconds": 90.0, **r8}} for s in (1, 2)}}
    md = "\n".join(lora_lines(rows, runs, A))
    assert "| deepfm | msd forced item + lora8 vs msd forced item | 0.7100 ± 0.0141 | +0.0050 | 1/2 |" in md, md
    assert "| deepfm | msd forced item + lora8 | 90 | 25.0 | 4 | 12 |" in md, md
    del info["msd"]["selection"]
    try:
        msd_variant(info, "msd", "toy")
        raise AssertionError("a missing msd.selection passed")
    except SystemExit as e:
        assert "'selection'" in str(e), e
    print("self-test passed")


def main():
    ap, argv, extra = experiment_args(__doc__)
    ap.add_argument("--forced", default="", help="also these --msd-levels, comma-separated, + inside one: item+user")
    ap.add_argument("--texts", help="semctr extract output (item.tsv, user.tsv) for --msd-texts")
    ap.add_argument("--lora", type=int, default=0, help="also every variant with LoRA of this rank on the encoder")
    ap.add_argument("--lora-forced-only", action="store_true", help="LoRA on the forced variants only, not auto")
    a = finish_args(ap, argv, extra)
    if a.self_test:
        return self_test()
    a.forced = [f for f in a.forced.split(",") if f]
    default_texts = os.path.join(ROOT, "bench", "results", "msd-extract")
    if a.texts is None and a.dataset == "ml-100k" and os.path.isdir(default_texts):
        a.texts = default_texts
    texts = os.path.relpath(a.texts, ROOT) if a.texts else None
    texts_note = f"texts per level from `{texts}`" if texts else \
        "**no extraction directory: every entity used its raw entity text (no LLM-extracted semantics)**"
    a.texts = ["--msd-texts", a.texts] if a.texts else []
    name = f"msd-{a.dataset}" + (f"-{a.tag}" if a.tag else "")
    work = os.path.join(ROOT, "runs", name)
    os.makedirs(work, exist_ok=True)
    results, runs = {}, {}
    for model in a.models:
        for seed in a.seeds:
            run_seed(a, work, model, seed, results.setdefault(model, {}), runs.setdefault(model, {}))
    order = ["base"] + [n for n, _, _ in variants(a)]
    rows = result_rows(a.dataset, results, order)
    md = md_preamble(f"MSD on {a.dataset}", a, [
        f"Variants (docs/msd.md): *msd* with its levels chosen on validation (`--msd-levels` auto)"
        + (", *msd forced L* with `--msd-levels L`" if a.forced else "") + f"; {texts_note}. The serving-latency "
        "comparison of the earlier ml-100k-only script is not part of this experiment (`semctr bench-serve`)."
        + (f" *V + lora{a.lora}*: the variant V with LoRA of rank {a.lora} on the small encoder "
           f"(`--msd-lora-rank {a.lora}`, docs/msd.md)." if a.lora else "") + "\n"])
    lrows = lora_rows(a.dataset, results, a) if a.lora else []
    md += md_tables(rows, a.models) + (lora_lines(lrows, runs, a) if a.lora else []) + levels_lines(runs)
    print(write_experiment(name, a, rows, md, {"msd_runs": runs, "texts": texts, "lora_rows": lrows}))


if __name__ == "__main__":
    sys.exit(main())
