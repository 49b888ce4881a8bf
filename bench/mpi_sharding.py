#!/usr/bin/env python3
"""Sharded embedding tables (train --shard-embeddings) against replicated ones,
measured on this machine and modelled on a cluster.

Measured, side by side in one run on the Criteo-shaped rows of
bench/mpi_scaling.py (DeepFM, global batch 4096, alternating the cases,
median of --repeats runs):
  - samples/s of 2 ranks x 1 thread, tables replicated vs sharded, and of
    1 rank, plain vs --shard-embeddings (the cost of the lookup machinery
    alone, no communication);
  - bytes each rank sends and receives per step (train --json "dist");
  - every rank's peak RSS (/usr/bin/time around each rank);
  - the embedding bytes a rank sends per step at the slice sizes of 8 and 64
    machines (2 ranks, global batch 2 x slice).
Modelled (arithmetic in the .md): 8 and 64 machines on 25 Gb/s, from the
compute times of bench/results/mpi-scaling.json (same machine, same data)
and the bytes measured here; the replicated rows are mpi-scaling's.

Usage: python3 bench/mpi_sharding.py [--bin build-mpi/semctr] [--repeats 3]
       python3 bench/mpi_sharding.py --render   (the .md again from the .json)
Writes bench/results/mpi-sharding.{json,md}. Needs bench/results/mpi-scaling.json
and its data (runs/mpi-scaling/data; python3 bench/mpi_scaling.py makes both).
"""
import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mpi_scaling as ms  # noqa: E402  (its environment, mpirun line and cluster constants)

ROOT = ms.ROOT
RESULT = os.path.join(ROOT, "bench", "results", "mpi-sharding")


def train(a, ranks, batch, steps, shard):
    """One run; (the --json result, every rank's peak RSS in bytes, the info lines)."""
    out = os.path.join(a.work, f"sh-{ranks}-{int(shard)}.model")
    cmd = ["/usr/bin/time", "-f", "peak_rss_kb %M", a.bin, "train", "--data", a.data, "--model", "deepfm",
           "--out", out, "--epochs", "1", "--batch-size", str(batch), "--max-steps", str(steps), "--threads", "1",
           "--checkpoint", os.path.join(a.work, f"sh-{ranks}-{int(shard)}.ckpt"), "--json"]
    if shard:
        cmd.append("--shard-embeddings")
    if ranks > 1:
        cmd = ms.MPIRUN + ["-np", str(ranks)] + cmd
    env = dict(ms.ENV)
    env.pop("SEMCTR_QUIET")  # the "tables sharded over" line is wanted
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode:
        sys.exit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    rss = [int(k) * 1024 for k in re.findall(r"peak_rss_kb (\d+)", r.stderr)]
    info = [l for l in r.stderr.splitlines() if "sharded over" in l]
    return json.loads(r.stdout.strip().splitlines()[-1]), rss, info


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "build-mpi", "semctr"))
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--samples", type=int, default=160_000, help="samples per timed run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--work", default=os.path.join(ROOT, "runs", "mpi-scaling"))
    ap.add_argument("--render", action="store_true", help="only rewrite the .md from the .json")
    a = ap.parse_args()
    if a.render:
        with open(RESULT + ".json") as f:
            return render(json.load(f))
    a.data = os.path.join(a.work, "data")
    with open(ms.RESULT + ".json") as f:
        scaling = json.load(f)
    meta = json.load(open(os.path.join(a.data, "meta.json")))
    id_rows = sum(f["vocab_size"] for f in meta["fields"] if f["kind"] != "numeric")
    load_start = os.getloadavg()[0]

    steps = max(1, a.samples // a.batch)
    cases = [(2, False), (2, True), (1, False), (1, True)]
    sps = {c: [] for c in cases}
    last, rss, info = {}, {}, []
    for rep in range(a.repeats):
        for c in cases:
            r, m, i = train(a, c[0], a.batch, steps, c[1])
            sps[c].append(r["samples_per_s"])
            last[c], rss[c] = r, m
            info = info or i
        print(f"repeat {rep + 1}: " + ", ".join(f"{c[0]}r{'S' if c[1] else 'R'} {sps[c][-1]:.0f}" for c in cases),
              file=sys.stderr)
    med = {c: statistics.median(v) for c, v in sps.items()}

    # the embedding bytes a rank sends per step at the modelled slice sizes, 2 ranks
    per_slice = {}
    for n in (8, 64):
        b = a.batch // n
        r, _, _ = train(a, 2, 2 * b, max(10, 20_000 // b), True)
        per_slice[str(b)] = {"sent_2": r["dist"]["sparse_bytes_sent_per_step"],
                        "recv_2": r["dist"]["sparse_bytes_recv_per_step"]}
        print(f"slice {b}: {per_slice[str(b)]['sent_2']:.0f} B sent", file=sys.stderr)
    per_slice[str(a.batch // 2)] = {"sent_2": last[(2, True)]["dist"]["sparse_bytes_sent_per_step"],
                               "recv_2": last[(2, True)]["dist"]["sparse_bytes_recv_per_step"]}

    cpu = platform.processor() or "unknown"
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    res = {"name": "mpi-sharding", "date": datetime.date.today().isoformat(),
           "command": " ".join(["python3", "bench/mpi_sharding.py"] + sys.argv[1:]),
           "machine": {"cpu": cpu, "cores": os.cpu_count(), "load_avg_at_start": load_start,
                       "load_avg_at_end": os.getloadavg()[0], "gpu": None},
           "model": "deepfm", "global_batch": a.batch, "dataset_rows": meta["rows"], "id_rows": id_rows,
           "repeats": a.repeats, "steps_per_run": steps, "info": info,
           "measured": [{"ranks": c[0], "sharded": c[1], "samples_per_s_median": med[c], "samples_per_s_runs": sps[c],
                         "peak_rss_bytes_per_rank": rss[c], "dist": last[c]["dist"]} for c in cases],
           "per_slice": per_slice, "scaling": {"per_slice": scaling["per_slice"],
                                               "bytes_per_step_2_ranks": scaling["bytes_per_step_2_ranks"],
                                               "cluster_model": scaling["cluster_model"]},
           "rows": [
               {"case": "deepfm, 2 ranks x 1 thread, global batch 4096, sharded vs replicated tables",
                "metric": "samples/s", "semctr": med[(2, True)], "peer": "semctr, replicated tables",
                "peer_value": med[(2, False)], "ratio": med[(2, True)] / med[(2, False)], "better": "higher"}]}
    with open(RESULT + ".json", "w") as f:
        json.dump(res, f, indent=1)
    render(res)


def cluster_model(res):
    """8 and 64 machines: compute from mpi-scaling's 1-thread step times of the slice, times the cost of the
    lookup machinery on one process (the fastest runs' ratio, never below 1: load only slows runs down, and a
    noisy ratio must not credit sharding with speed); dense allreduce as there; the exchange: a count exchange
    and 3 all-to-alls (ids, rows, gradients)."""
    m = {(x["ranks"], x["sharded"]): x for x in res["measured"]}
    overhead = max(1.0, max(m[(1, False)]["samples_per_s_runs"]) / max(m[(1, True)]["samples_per_s_runs"]))
    sc = res["scaling"]
    W, alpha = sc["cluster_model"]["link_bytes_per_s"], sc["cluster_model"]["alpha_s"]
    rep = {r["machines"]: r for r in sc["cluster_model"]["rows"]}
    dense = sc["bytes_per_step_2_ranks"]["dense_bytes_per_step"]
    B, rows = res["global_batch"], []
    for n in (2, 8, 64):
        b = B // n
        compute = sc["per_slice"][str(b)]["step_compute_s"] * overhead
        sent = (n - 1) / n * 2 * res["per_slice"][str(b)]["sent_2"]  # of 2 ranks, each sends half of all
        t_d = ms.ring_allreduce_s(n, dense)
        t_x = sent / W + 4 * (n - 1) * alpha
        step = compute + t_d + t_x
        rows.append({"machines": n, "slice_rows": b, "compute_s": compute, "dense_allreduce_s": t_d,
                     "sharded_bytes_sent_per_rank": sent, "exchange_s": t_x, "step_s": step,
                     "speedup": B / step / rep[1]["samples_per_s"],
                     "replicated_recv_per_rank": (n - 1) * rep[n]["sparse_bytes_per_rank"],
                     "replicated_exchange_s": rep[n]["sparse_allgather_s"],
                     "replicated_speedup": rep[n]["samples_per_s"] / rep[1]["samples_per_s"]})
    return overhead, W, alpha, dense, rows


def mib(b):
    return f"{b / 2**20:.1f}"


def render(res):
    mach, B = res["machine"], res["global_batch"]
    m = {(x["ranks"], x["sharded"]): x for x in res["measured"]}
    overhead, W, alpha, dense, model_rows = cluster_model(res)
    D = 16
    per_row = (D + 1) * 4  # embedding + first-order weight, float32
    L = [f"# Sharded embedding tables: deepfm, global batch {B}, Criteo-shaped rows", "",
         f"{res['date']}, {mach['cpu']}, {mach['cores']} cores, shared with other work (load average "
         f"{mach['load_avg_at_start']:.1f} at the start, {mach['load_avg_at_end']:.1f} at the end). "
         f"`{res['command']}`: the data of bench/results/mpi-scaling.md ({res['dataset_rows']['train']} training rows, "
         f"{res['id_rows']} rows in its 39 id tables), {res['steps_per_run']} steps per run, median of "
         f"{res['repeats']} alternating runs, 1 thread per rank; throughput excludes validation.", "",
         "## Measured on this machine", "",
         "| case | samples/s (median) | bytes sent / received per step per rank | peak RSS per rank (MiB) |",
         "|---|---|---|---|"]
    for (r, s), x in m.items():
        d = x["dist"]
        L.append(f"| {r} rank{'s' if r > 1 else ''}, tables {'sharded' if s else 'replicated'} | "
                 f"{x['samples_per_s_median']:.0f} | "
                 f"{d['sparse_bytes_sent_per_step']:.0f} / {d['sparse_bytes_recv_per_step']:.0f} | "
                 f"{', '.join(mib(v) for v in x['peak_rss_bytes_per_rank'])} |")
    two_r, two_s = m[(2, False)], m[(2, True)]
    ratio = two_s["samples_per_s_median"] / two_r["samples_per_s_median"]
    one_r, one_s = m[(1, False)]["samples_per_s_runs"], m[(1, True)]["samples_per_s_runs"]
    L += ["", f"2 ranks, sharded / replicated: {ratio:.2f}x the samples/s (medians). On one process, where sharding "
          "adds only local work (mapping ids, copying rows in and gradients out), the fastest runs are "
          f"{max(one_s):.0f} samples/s sharded and {max(one_r):.0f} replicated: a difference within this machine's "
          "noise. Embedding bytes per step and rank at 2 ranks: replicated "
          f"{two_r['dist']['sparse_bytes_sent_per_step']:.0f} B sent (every touched row's id and gradient, to every "
          f"other rank), sharded {two_s['dist']['sparse_bytes_sent_per_step']:.0f} B (ids asked, rows served, "
          "gradients returned, to their owner only).", "",
          "Peak RSS here is dominated by the mapped dataset and the step's buffers: the tables of this data are "
          f"small ({res['id_rows']} rows x {per_row} B = {mib(res['id_rows'] * per_row)} MiB of values; with Adam's "
          "two moments and the best epoch's copy, 4x that). What sharding changes is that part: a rank holds "
          f"1/N of it. In the run of 2026-12-05 rank 0's peak also held the whole tables it then gathered to write "
          "the model file and checkpoint; rank 0 now streams them into the file a piece at a time.",
          "", f"The run printed: `{res['info'][0].strip() if res['info'] else ''}`", ""]
    if max(mach["load_avg_at_start"], mach["load_avg_at_end"]) > mach["cores"]:
        L += [f"The machine had more runnable processes than its {mach['cores']} cores: the 2-rank samples/s measure "
              "contention as much as the method; the bytes do not depend on load.", ""]
    L += ["## Modelled: 8 and 64 machines, 25 Gb/s", "",
          "One rank per machine, global batch B = 4096 over N machines (the model of one process, as "
          "bench/results/mpi-scaling.md). compute(B/N): the 1-thread step time of the slice from mpi-scaling.json, "
          f"times {overhead:.2f} (the cost of sharding's local work above, taken as at least 1). Bytes a rank sends "
          "per step: of the ids its slice uses, (N-1)/N are owned elsewhere; for each it sends the id, and as an "
          "owner it serves as many rows and receives as many gradients: S_x(N) = (N-1)/N x 2 x S_2(B/N), where "
          "S_2 is what one of 2 ranks sends with slices of B/N rows (measured). Exchange time t_x = S_x / W + "
          "4 (N-1) a (a count exchange and 3 all-to-alls, each N-1 messages per rank); dense allreduce t_d as in "
          f"mpi-scaling (S_d = {dense:.0f} B); W = {W:.4g} B/s, a = {alpha * 1e6:.0f} us. Replicated: every rank "
          "receives the other N-1 slices' rows, t_s of mpi-scaling.", "",
          "| N | slice rows | compute (ms) | t_d (ms) | sharded: S_x sent per rank (B) | t_x (ms) | replicated: "
          "received per rank (B) | t_s (ms) | speed-up, sharded | speed-up, replicated |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for r in model_rows:
        L.append(f"| {r['machines']} | {r['slice_rows']} | {r['compute_s'] * 1e3:.2f} | "
                 f"{r['dense_allreduce_s'] * 1e3:.3f} | {r['sharded_bytes_sent_per_rank']:.0f} | "
                 f"{r['exchange_s'] * 1e3:.3f} | {r['replicated_recv_per_rank']:.0f} | "
                 f"{r['replicated_exchange_s'] * 1e3:.3f} | {r['speedup']:.1f}x | {r['replicated_speedup']:.1f}x |")
    r8, r64 = model_rows[1], model_rows[-1]
    lat64 = 4 * 63 * alpha
    L += ["", f"For example N = 64: S_x = 63/64 x 2 x {res['per_slice'][str(B // 64)]['sent_2']:.0f} "
          f"= {r64['sharded_bytes_sent_per_rank']:.0f} B, t_x = {r64['sharded_bytes_sent_per_rank']:.0f} / "
          f"{W:.4g} + 4 x 63 x {alpha:g} = {r64['exchange_s'] * 1e3:.3f} ms.", "",
          f"Bytes: a sharded rank moves what its own slice uses, {r8['sharded_bytes_sent_per_rank']:.0f} B at 8 "
          f"machines and {r64['sharded_bytes_sent_per_rank']:.0f} B at 64, where a replicated rank receives every "
          f"other slice's rows, {r8['replicated_recv_per_rank']:.0f} B and {r64['replicated_recv_per_rank']:.0f} B: "
          "the sharded volume falls as N grows, the replicated one rises. Time: at these batch sizes the exchange is "
          f"bound by message latency, not bytes (4 x 63 x a = {lat64 * 1e3:.1f} ms of t_x at 64), and sharding makes "
          "four rounds of messages where the replicated allgather makes one, so in this model it is "
          f"{'slower' if r64['speedup'] < r64['replicated_speedup'] else 'faster'} at 64 machines "
          f"({r64['speedup']:.1f}x against {r64['replicated_speedup']:.1f}x) and "
          f"{'slower' if r8['speedup'] < r8['replicated_speedup'] else 'about as fast or faster'} at 8 "
          f"({r8['speedup']:.1f}x against {r8['replicated_speedup']:.1f}x). (An all-to-all with "
          "log2(N) rounds, as Bruck's algorithm, would cut that latency; not modelled.) What sharding buys is "
          "memory, and volume at large N. The memory a rank needs for the tables is "
          "1/N of them: 64 machines of 128 GB hold tables of about 64 x 128 GB / (4 x 4 B x (D + 1)) = "
          "30 billion rows at D = 16 (values, two Adam moments and the best copy), against 470 million replicated. "
          "The model leaves out stragglers, the merge of gradient parts (memory speed) and the writing of "
          "files."]
    with open(RESULT + ".md", "w") as f:
        f.write("\n".join(L) + "\n")
    print("\n".join(L))


if __name__ == "__main__":
    main()
