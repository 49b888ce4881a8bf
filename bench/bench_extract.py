#!/usr/bin/env python3
"""Knowledge-extraction throughput: `semctr extract` on the first --limit
MovieLens items with the committed parameters, one entity at a time
(--batch 1) against entities asked together (--batch B), and optionally
against an older semctr binary (--old-bin, e.g. one built before batching),
runs alternating, fresh output folder per run, SEMCTR_THREADS=1 unless
--threads says otherwise. The texts of --batch 1 and --batch B must be
identical (the script checks it and fails otherwise); an older binary may
sample different texts (other float rounding) and is timed only.

  python3 bench/bench_extract.py [--limit 40] [--batch 8] [--reps 5] [--threads 1]
                                 [--config configs/ml-100k.yaml] [--entity item] [--data DIR]
                                 [--bin build/semctr] [--old-bin PATH] [--name extract-ml100k]

--config names the dataset whose entities are asked about (its `extract:`
prompts); --data its prepared folder, for the {history} of users.

Items per minute is entities / wall time of the whole command (model load
included: about 0.1 s). Writes bench/results/NAME.md and NAME.json (format:
../shared/BENCH.md)."""
import argparse
import datetime
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from benchio import machine, write_results

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PARAMS = ["--max-tokens", "64", "--seed", "1", "--retries", "1"]


def run(a, binary, batch):
    out = tempfile.mkdtemp(prefix="sc_bench_extract_")
    cmd = [binary, "extract", "--config", a.config, "--entity", a.entity] + PARAMS + \
        (["--data", a.data] if a.data else []) + ["--out", out, "--limit", str(a.limit)] + \
        (["--batch", str(batch)] if batch else [])
    limit, threads, entity = a.limit, a.threads, a.entity
    env = dict(os.environ, SEMCTR_THREADS=str(threads))
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, env=env, capture_output=True)
    dt = time.perf_counter() - t0
    with open(os.path.join(out, f"{entity}.tsv")) as f:
        lines = sorted(f.read().splitlines())
    shutil.rmtree(out)
    return limit / dt * 60.0, lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--config", default=os.path.join(ROOT, "configs", "ml-100k.yaml"))
    ap.add_argument("--entity", default="item", help="the join whose rows are prompted (item, user)")
    ap.add_argument("--data", help="the prepared dataset, for {history} (user prompts)")
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "semctr"))
    ap.add_argument("--old-bin", default=None)
    ap.add_argument("--old-label", default="semctr before batching (afb385e)")
    ap.add_argument("--name", default="extract-ml100k")
    a = ap.parse_args()
    # the runs start in the repository root: paths as given are relative to here
    a.config, a.bin = os.path.abspath(a.config), os.path.abspath(a.bin)
    a.data = a.data and os.path.abspath(a.data)
    a.old_bin = a.old_bin and os.path.abspath(a.old_bin)
    sides = {"batch 1": (a.bin, 1), f"batch {a.batch}": (a.bin, a.batch)}
    if a.old_bin:
        sides[a.old_label] = (a.old_bin, 0)
    rates = {k: [] for k in sides}
    texts = {}
    for rep in range(a.reps):
        order = list(sides) if rep % 2 == 0 else list(reversed(sides))
        for k in order:
            binary, batch = sides[k]
            r, lines = run(a, binary, batch)
            rates[k].append(r)
            if binary == a.bin:
                texts.setdefault(k, lines)
            print(f"rep {rep} {k}: {r:.1f} items/min", file=sys.stderr, flush=True)
    if texts["batch 1"] != texts[f"batch {a.batch}"]:
        sys.exit("bench_extract: --batch 1 and --batch %d wrote different texts" % a.batch)
    med = {k: statistics.median(v) for k, v in rates.items()}
    base = "batch 1"
    rows = [{"case": f"{a.limit} {a.entity}s, --batch {a.batch} vs --batch 1, {a.threads} thread(s)", "metric": "items/min",
             "semctr": round(med[f"batch {a.batch}"], 1), "peer": "semctr --batch 1 (one entity at a time)",
             "peer_value": round(med[base], 1), "ratio": round(med[f"batch {a.batch}"] / med[base], 2), "better": "higher"}]
    if a.old_bin:
        for k in (base, f"batch {a.batch}"):
            rows.append({"case": f"{a.limit} {a.entity}s, this semctr --{k} vs {a.old_label}, "
                                 f"{a.threads} thread(s)", "metric": "items/min", "semctr": round(med[k], 1),
                         "peer": a.old_label, "peer_value": round(med[a.old_label], 1),
                         "ratio": round(med[k] / med[a.old_label], 2), "better": "higher"})
    mach = machine()
    cpu, load = mach["cpu"], mach["load_average_at_end"]
    cmd = "python3 bench/bench_extract.py " + " ".join(sys.argv[1:])
    out = {"name": a.name, "date": datetime.date.today().isoformat(), "command": cmd.strip(), "machine": mach,
           "rows": rows, "runs": rates}
    md = [f"# {a.name}: `semctr extract` throughput", "",
          f"{out['date']}, `{out['command']}`, {cpu} ({os.cpu_count()} cores), SmolLM2-135M-Instruct Q4_1, "
          f"the extraction parameters of {os.path.relpath(a.config, ROOT)} (entity {a.entity}, --max-tokens 64 --seed 1 --retries 1). "
          f"Median of {a.reps} alternating runs, each a fresh process and output folder.", "",
          "| case | metric | semctr | peer | peer value | ratio |", "| --- | --- | ---: | --- | ---: | ---: |"]
    for r in rows:
        md.append(f"| {r['case']} | {r['metric']} | {r['semctr']} | {r['peer']} | {r['peer_value']} | {r['ratio']} |")
    md += ["", f"--batch 1 and --batch {a.batch} wrote the same texts (checked by the script). "
           f"Load average at the end: {load}; per-run numbers are in the JSON file."]
    print(write_results(a.name, out, md), end="")


if __name__ == "__main__":
    main()
