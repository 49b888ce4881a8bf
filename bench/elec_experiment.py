#!/usr/bin/env python3
"""ELEC against the plain backbone on one dataset, seed-paired.

For every backbone m and seed s (docs/elec.md for the method):
  base                 semctr train (plain) + semctr eval --cold N
  elec gain            semctr train --method elec --json: test.gain (needs LLM vectors to serve)
  elec vanilla         the same run: test.vanilla (the distilled network as trained)
  elec vanilla served  semctr export --network vanilla, then semctr eval --cold N of that file
  elec vanilla no kd   a second ELEC run with --alpha 0 --beta 0 --adapter-epochs 0: test.vanilla
and each on the cold-start slice (test_cold / eval's cold). The guard's decision
(elec.guard) is recorded per seed. Arguments after `--` go to every ELEC training.

Usage: python3 bench/elec_experiment.py [--config configs/ml-100k.yaml] [--data DIR] [--bin build/semctr]
       [--seeds 1,2,3,4,5] [--models deepfm,dcnv2] [--threads 2] [--cold 5] [--tag TAG] [--self-test]
       [-- ELEC ARGS]
Writes bench/results/elec-NAME[-TAG].{json,md,svg}, NAME the config's `name:`. A decoder as the LLM:
  python3 bench/elec_experiment.py --tag qwen2.5-0.5b -- --lm ~/.cache/semctr/models/QWEN.gguf
"""
import os
import sys

from benchio import (ROOT, base_run, eval_run, experiment_args, finish_args, log, md_preamble, md_tables, metrics, need,
                     result_rows, same_slice, self_test_rows, sh, sh_json, write_experiment)

ORDER = ["base", "elec gain", "elec vanilla", "elec vanilla served", "elec vanilla no kd"]


def elec_variants(info, src):
    """Variants of one ELEC --json info: {name: metrics} and the guard record."""
    out = {}
    for name, net in (("elec gain", "gain"), ("elec vanilla", "vanilla")):
        out[name] = metrics(info, "test", net, src=src)
        out[name + " cold"] = metrics(info, "test_cold", net, src=src, rows=True)
    guard = need(info, "elec", "guard", src=src)
    rec = {"teacher_accepted": need(guard, "teacher_accepted", src=src + " elec.guard"),
           "served": need(guard, "served", src=src + " elec.guard"), "guard": guard,
           "test": info["test"], "test_cold": info["test_cold"]}
    return out, rec


def run_seed(a, work, model, seed, res, runs):
    res.setdefault("base", {})[seed], res.setdefault("base cold", {})[seed] = base_run(a, work, model, seed)
    common = ["--data", a.data, "--model", model, "--seed", seed, "--threads", a.threads, "--json"]
    out = os.path.join(work, f"{model}-elec-{seed}.model")
    cmd = [a.bin, "train", "--method", "elec", "--out", out, *common, *a.extra]
    src = " ".join(map(str, cmd))
    v, rec = elec_variants(sh_json(cmd), src)
    runs[str(seed)] = rec
    served = os.path.join(work, f"{model}-elec-{seed}.served")
    sh([a.bin, "export", "--model", out, "--network", "vanilla", "--out", served])
    v["elec vanilla served"], v["elec vanilla served cold"] = eval_run(a, served)
    nokd = os.path.join(work, f"{model}-elec-nokd-{seed}.model")
    # without distillation the vanilla network never reads the adapter or the gain network, so the
    # adapter is not trained (--adapter-epochs 0): the same vanilla network, a fraction of the time
    cmd = [a.bin, "train", "--method", "elec", "--out", nokd, *common, *a.extra, "--alpha", "0", "--beta", "0",
           "--adapter-epochs", "0"]
    src = " ".join(map(str, cmd))
    info = sh_json(cmd)
    v["elec vanilla no kd"] = metrics(info, "test", "vanilla", src=src)
    v["elec vanilla no kd cold"] = metrics(info, "test_cold", "vanilla", src=src, rows=True)
    for name, m in v.items():
        if name.endswith(" cold"):
            same_slice(m, res["base cold"][seed], f"{model} seed {seed} {name}")
        res.setdefault(name, {})[seed] = m
    log(f"{model} seed {seed}: base {res['base'][seed]['auc']:.5f}, vanilla {v['elec vanilla']['auc']:.5f}, "
        f"served {v['elec vanilla served']['auc']:.5f}, teacher accepted: {rec['teacher_accepted']}")


def guard_lines(runs):
    out = ["\n## The guard, per seed\n", "| backbone | seed | teacher accepted | served | reason |",
           "|---|---|---|---|---|"]
    for model, by_seed in runs.items():
        out += [f"| {model} | {s} | {'yes' if r['teacher_accepted'] else 'no'} | {r['served']} | "
                f"{r['guard'].get('reason', '')} |" for s, r in by_seed.items()]
    return out


def self_test():
    self_test_rows()
    t = {"auc": 0.7, "gauc": 0.69, "logloss": 0.6}
    info = {"test": {"gain": t, "vanilla": t}, "test_cold": {"gain": {**t, "rows": 3}, "vanilla": {**t, "rows": 3}},
            "elec": {"guard": {"teacher_accepted": False, "served": "base", "valid_auc": 0.7}}}
    v, rec = elec_variants(info, "toy")
    assert v["elec vanilla cold"]["rows"] == 3 and not rec["teacher_accepted"] and rec["served"] == "base"
    assert "| deepfm | 1 | no | base |  |" in guard_lines({"deepfm": {"1": rec}})
    del info["elec"]["guard"]["served"]
    try:
        elec_variants(info, "toy")
        raise AssertionError("a missing guard key passed")
    except SystemExit as e:
        assert "'served'" in str(e), e
    print("self-test passed")


def main():
    ap, argv, extra = experiment_args(__doc__)
    a = finish_args(ap, argv, extra)
    if a.self_test:
        return self_test()
    name = f"elec-{a.dataset}" + (f"-{a.tag}" if a.tag else "")
    work = os.path.join(ROOT, "runs", name)
    os.makedirs(work, exist_ok=True)
    results, runs = {}, {}
    for model in a.models:
        for seed in a.seeds:
            run_seed(a, work, model, seed, results.setdefault(model, {}), runs.setdefault(model, {}))
    rows = result_rows(a.dataset, results, ORDER)
    md = md_preamble(f"ELEC on {a.dataset}", a, [
        "Variants (docs/elec.md): *elec gain* the gain network (tabular + adapted LLM vector; needs the LLM to "
        "serve new texts), *elec vanilla* the distilled vanilla network as trained, *elec vanilla served* the "
        "vanilla network of the model file exported alone (`semctr export --network vanilla`) and evaluated by "
        "`semctr eval` (what the file serves: see the guard table below), *elec vanilla "
        "no kd* the vanilla network of a run with `--alpha 0 --beta 0` (no distillation).\n"])
    md += md_tables(rows, a.models) + guard_lines(runs)
    print(write_experiment(name, a, rows, md, {"elec_runs": runs}))


if __name__ == "__main__":
    sys.exit(main())
