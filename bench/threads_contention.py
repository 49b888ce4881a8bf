#!/usr/bin/env python3
"""Training threads under contention: DeepFM training throughput (samples/s)
at 1 and 2 threads, on an idle machine and with one busy neighbour per core
(`yes > /dev/null`, started before and killed after each run), side by side
in one run. With --bin-before, an earlier build alternates with this one in
the same rounds (the before/after of a change).

The question it answers (issue 17, item 3): on a host where other processes
are busy, is `--threads 2` ever slower than `--threads 1`? Every cell is the
median of --repeats runs of --steps batches; cells alternate within a round
so that the machine's other load falls on all of them alike. Ratios: 2
threads / 1 thread of the same build and neighbours (> 1: the second thread
pays), and after / before (> 1: this build ahead).

Cases: MovieLens-100K (runs/ml-100k, prepared when missing) at batch 256,
and Criteo-shaped rows of `semctr gen-criteo` (--criteo-rows, prepared with
configs/criteo.yaml) at batch 4096.

Run it under the benchmark lock (flock /tmp/semctr-bench.lock ...): the
neighbours are part of the measurement, other benchmarks must not be.

Usage: python3 bench/threads_contention.py [--bin build/semctr] [--bin-before OLD/semctr]
           [--repeats 5] [--criteo-rows 1000000]
Writes bench/results/threads-contention.{json,md}.
"""
import argparse, datetime, json, os, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from benchio import machine, write_results  # noqa: E402


def sh(cmd, env=None):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout


def prepare(binary, config, out, env=None):
    if not os.path.exists(os.path.join(out, "train.scd")):
        sh([binary, "prepare", "--config", config, "--out", out], env=env)
    return out


def train_once(binary, data, batch, steps, threads, neighbours, work):
    """samples/s of one run, with `neighbours` busy processes alive throughout"""
    busy = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(neighbours)]
    try:
        time.sleep(0.2)
        env = dict(os.environ, SEMCTR_QUIET="1")
        r = json.loads(sh([binary, "train", "--data", data, "--model", "deepfm", "--out",
                           os.path.join(work, "tc.model"), "--epochs", "1", "--max-steps", str(steps),
                           "--batch-size", str(batch), "--threads", str(threads), "--seed", "1", "--json"],
                          env=env))
    finally:
        for p in busy:
            p.kill()
            p.wait()
    return r["samples_per_s"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "semctr"))
    ap.add_argument("--bin-before", default=None, help="an earlier build, run alternately in the same rounds")
    ap.add_argument("--before-label", default="before")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--criteo-rows", type=int, default=1000000)
    ap.add_argument("--work", default=os.path.join(ROOT, "runs", "threads-contention"))
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    cores = os.cpu_count()
    ml = prepare(a.bin, os.path.join(ROOT, "configs", "ml-100k.yaml"), os.path.join(ROOT, "runs", "ml-100k"))
    crit_txt = os.path.join(a.work, f"criteo-{a.criteo_rows}.txt")
    if not os.path.exists(crit_txt):
        sh([a.bin, "gen-criteo", "--rows", str(a.criteo_rows), "--out", crit_txt, "--seed", "11"])
    crit = prepare(a.bin, os.path.join(ROOT, "configs", "criteo.yaml"),
                   os.path.join(a.work, f"criteo-{a.criteo_rows}"), env=dict(os.environ, SEMCTR_CRITEO=crit_txt))
    datasets = [("MovieLens-100K", ml, 256, 150), (f"Criteo-shaped {a.criteo_rows:,} rows", crit, 4096, 30)]
    builds = [("after", a.bin)] + ([(a.before_label, a.bin_before)] if a.bin_before else [])
    cells = [(d, b, t, n) for d in datasets for b in builds for n in (0, cores) for t in (1, 2)]
    runs = {(d[0], b[0], t, n): [] for d, b, t, n in cells}
    for r in range(a.repeats):
        for d, b, t, n in cells:
            sps = train_once(b[1], d[1], d[2], d[3], t, n, a.work)
            runs[(d[0], b[0], t, n)].append(sps)
            print(f"round {r + 1}: {d[0]} {b[0]} threads {t} neighbours {n}: {sps:.0f} samples/s", flush=True)
    med = {k: statistics.median(v) for k, v in runs.items()}

    rows, md = [], []
    for d in datasets:
        for bl, _ in builds:
            for n in (0, cores):
                one, two = med[(d[0], bl, 1, n)], med[(d[0], bl, 2, n)]
                rows.append({"case": f"deepfm {d[0]}, batch {d[2]}, {bl}, {n} busy neighbours: 2 threads vs 1",
                             "metric": "samples/s", "semctr": round(two, 1), "peer": "the same build at 1 thread",
                             "peer_value": round(one, 1), "ratio": round(two / one, 3), "better": "higher",
                             "runs_2_threads": [round(x, 1) for x in runs[(d[0], bl, 2, n)]],
                             "runs_1_thread": [round(x, 1) for x in runs[(d[0], bl, 1, n)]]})
        if a.bin_before:
            for n in (0, cores):
                for t in (1, 2):
                    new, old = med[(d[0], "after", t, n)], med[(d[0], a.before_label, t, n)]
                    rows.append({"case": f"deepfm {d[0]}, batch {d[2]}, {t} threads, {n} busy neighbours: "
                                         f"after vs {a.before_label}",
                                 "metric": "samples/s", "semctr": round(new, 1), "peer": f"semctr {a.before_label}",
                                 "peer_value": round(old, 1), "ratio": round(new / old, 3), "better": "higher"})
    cmd = "python3 bench/threads_contention.py " + " ".join(sys.argv[1:])
    out = {"name": "threads-contention", "date": datetime.date.today().isoformat(), "command": cmd,
           "machine": machine(), "repeats": a.repeats, "rows": rows}
    md.append("# Training threads with busy neighbours")
    md.append("")
    md.append(f"{out['date']}, {out['machine']['cpu']}, {cores} cores. `{cmd}`. DeepFM (default architecture), "
              f"median samples/s of {a.repeats} runs per cell, cells alternating within each round; "
              f"'{cores} busy' = one `yes > /dev/null` per core alive during the run.")
    md.append("")
    hdr = "| data, batch | build | neighbours | 1 thread | 2 threads | 2 / 1 |"
    md += [hdr, "|---|---|---|---|---|---|"]
    for d in datasets:
        for bl, _ in builds:
            for n in (0, cores):
                one, two = med[(d[0], bl, 1, n)], med[(d[0], bl, 2, n)]
                md.append(f"| {d[0]}, {d[2]} | {bl} | {n} busy | {one:,.0f} | {two:,.0f} | {two / one:.2f} |")
    if a.bin_before:
        md += ["", f"after / {a.before_label} (same threads and neighbours):", "",
               "| data, batch | neighbours | 1 thread | 2 threads |", "|---|---|---|---|"]
        for d in datasets:
            for n in (0, cores):
                r1 = med[(d[0], "after", 1, n)] / med[(d[0], a.before_label, 1, n)]
                r2 = med[(d[0], "after", 2, n)] / med[(d[0], a.before_label, 2, n)]
                md.append(f"| {d[0]}, {d[2]} | {n} busy | {r1:.2f}x | {r2:.2f}x |")
    md += ["", f"Load average at the end: {out['machine']['load_average_at_end']} (other users of the machine "
               "run outside the benchmark lock: builds, tests)."]
    print(write_results("threads-contention", out, md))


if __name__ == "__main__":
    main()
