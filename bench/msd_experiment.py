#!/usr/bin/env python3
"""MSD against the plain backbone on one dataset, seed-paired.

For every backbone m and seed s (docs/msd.md for the method):
  base                semctr train (plain) + semctr eval --cold N
  msd                 semctr train --method msd --json (levels chosen on validation): test.all, test.cold
  msd forced LEVELS   (--forced item,user,item+user+fusion) the same with --msd-levels LEVELS
The kept levels and the selection (msd.levels, msd.selection) are recorded per seed.
Texts per level from --texts DIR (`semctr extract` output), default
bench/results/msd-extract for ml-100k when it exists, else none (raw entity texts).
Arguments after `--` go to every MSD training.

Usage: python3 bench/msd_experiment.py [--config configs/ml-100k.yaml] [--data DIR] [--bin build/semctr]
       [--seeds 1,2,3,4,5] [--models deepfm,dcnv2] [--threads 2] [--cold 5] [--forced LEVELS,...]
       [--texts DIR] [--self-test] [-- MSD ARGS]
Writes bench/results/msd-NAME.{json,md,svg}, NAME the config's `name:`.
"""
import os
import sys

from benchio import (ROOT, fmt, base_run, experiment_args, finish_args, log, md_preamble, md_tables, metrics, need,
                     result_rows, same_slice, self_test_rows, sh_json, write_experiment)


def msd_variant(info, name, src):
    """{name: metrics, name cold: metrics} of one MSD --json info, and its levels record
    (the selection is required of the auto run only)."""
    v = {name: metrics(info, "test", "all", src=src), name + " cold": metrics(info, "test", "cold", src=src, rows=True)}
    sel = need(info, "msd", "selection", src=src) if name == "msd" else need(info, "msd", src=src).get("selection")
    return v, {"levels": need(info, "msd", "levels", src=src), "selection": sel}


def run_seed(a, work, model, seed, res, runs):
    res.setdefault("base", {})[seed], res.setdefault("base cold", {})[seed] = base_run(a, work, model, seed)
    rec = {}
    for levels in [None] + a.forced:
        name = "msd" if levels is None else f"msd forced {levels}"
        out = os.path.join(work, f"{model}-{name.replace(' ', '-')}-{seed}.model")
        cmd = [a.bin, "train", "--method", "msd", "--data", a.data, "--model", model, "--seed", seed, "--out", out,
               "--threads", a.threads, "--json", "--msd-cold", a.cold, *a.texts, *a.extra]
        if levels:
            cmd += ["--msd-levels", levels.replace("+", ",")]
        v, rec[name] = msd_variant(sh_json(cmd), name, " ".join(map(str, cmd)))
        same_slice(v[name + " cold"], res["base cold"][seed], f"{model} seed {seed} {name}")
        for k, m in v.items():
            res.setdefault(k, {})[seed] = m
        log(f"{model} seed {seed} {name}: AUC {v[name]['auc']:.5f} (base {res['base'][seed]['auc']:.5f}), "
            f"levels {rec[name]['levels']}")
    runs[str(seed)] = rec


def levels_lines(runs):
    out = ["\n## Levels kept by the selection on validation, per seed\n",
           "| backbone | seed | levels kept | candidates (levels: valid AUC) |", "|---|---|---|---|"]
    for model, by_seed in runs.items():
        for s, rec in by_seed.items():
            sel = ", ".join(f"{c.get('levels')}: {fmt(c.get('valid_auc'))}"
                            + "".join(f" ({k})" for k in ("kept", "chosen") if c.get(k))
                            for c in rec["msd"]["selection"])
            out.append(f"| {model} | {s} | {rec['msd']['levels']} | {sel} |")
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
    name = f"msd-{a.dataset}"
    work = os.path.join(ROOT, "runs", name)
    os.makedirs(work, exist_ok=True)
    results, runs = {}, {}
    for model in a.models:
        for seed in a.seeds:
            run_seed(a, work, model, seed, results.setdefault(model, {}), runs.setdefault(model, {}))
    order = ["base", "msd"] + [f"msd forced {f}" for f in a.forced]
    rows = result_rows(a.dataset, results, order)
    md = md_preamble(f"MSD on {a.dataset}", a, [
        f"Variants (docs/msd.md): *msd* with its levels chosen on validation (`--msd-levels` auto)"
        + (", *msd forced L* with `--msd-levels L`" if a.forced else "") + f"; {texts_note}. The serving-latency "
        "comparison of the earlier ml-100k-only script is not part of this experiment (`semctr bench-serve`).\n"])
    md += md_tables(rows, a.models) + levels_lines(runs)
    print(write_experiment(name, a, rows, md, {"msd_runs": runs, "texts": texts}))


if __name__ == "__main__":
    sys.exit(main())
