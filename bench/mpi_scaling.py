#!/usr/bin/env python3
"""Data-parallel training (make MPI=1) on this machine, and a model of it on a
cluster.

Measured, side by side in one run on Criteo-shaped rows (semctr gen-criteo,
configs/criteo.yaml), DeepFM, alternating the cases, median of --repeats runs
of a fixed number of samples each:
  - samples/s of 1 rank x 1 thread, 2 ranks x 1 thread (mpirun on loopback)
    and, as the peer a one-machine user would pick, 1 rank x 2 threads;
  - the bytes each rank communicates per step (semctr train --json: dense
    allreduce payload, embedding rows sent and received), and the embedding
    bytes one rank's slice sends at several slice sizes;
  - the compute time of one step of 1 thread at those slice sizes.
Modelled (the arithmetic is written out in the .md): the same global batch
over 8 and 64 machines of one rank each on a 25 Gb/s network, ring
collectives, from the measured compute times and bytes.

Usage: python3 bench/mpi_scaling.py [--rows 1000000] [--bin build-mpi/semctr] [--repeats 5]
       python3 bench/mpi_scaling.py --render   (the .md again from the .json)
Writes bench/results/mpi-scaling.{json,md}.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, SEMCTR_QUIET="1", OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
MPIRUN = ["mpirun", "--oversubscribe", "--bind-to", "none", "--mca", "btl", "self,vader,tcp",
          "--mca", "btl_tcp_if_include", "lo"]

# The cluster of the model: one rank per machine, 25 Gb/s links, ring collectives.
LINK_BYTES_PER_S = 25e9 / 8
ALPHA_S = 25e-6  # per message hop (MPI over TCP on 25 GbE, an assumption, not measured here)
RESULT = os.path.join(ROOT, "bench", "results", "mpi-scaling")


def sh(cmd, env=ENV):
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode:
        sys.exit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return r.stdout


def train(a, data, ranks, threads, batch, steps, model):
    out = os.path.join(a.work, f"m-{ranks}x{threads}.model")
    cmd = [a.bin, "train", "--data", data, "--model", model, "--out", out, "--epochs", "1", "--batch-size",
           str(batch), "--max-steps", str(steps), "--threads", str(threads), "--checkpoint",
           os.path.join(a.work, "ck"), "--json"]
    if ranks > 1:
        cmd = MPIRUN + ["-np", str(ranks)] + cmd
    return json.loads(sh(cmd).strip().splitlines()[-1])


def ring_allreduce_s(n, nbytes):
    return 2 * (n - 1) / n * nbytes / LINK_BYTES_PER_S + 2 * (n - 1) * ALPHA_S


def ring_allgather_s(n, bytes_per_rank):
    return (n - 1) * bytes_per_rank / LINK_BYTES_PER_S + (n - 1) * ALPHA_S


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build-mpi", "semctr"))
    ap.add_argument("--model", default="deepfm")
    ap.add_argument("--batch", type=int, default=4096, help="the global batch")
    ap.add_argument("--samples", type=int, default=160_000, help="samples per timed run")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--work", default=os.path.join(ROOT, "runs", "mpi-scaling"))
    ap.add_argument("--render", action="store_true", help="only rewrite the .md from the .json")
    a = ap.parse_args()
    if a.render:
        with open(RESULT + ".json") as f:
            return render(json.load(f))
    os.makedirs(a.work, exist_ok=True)
    load_start = os.getloadavg()[0]
    raw = os.path.join(a.work, "criteo.txt")
    data = os.path.join(a.work, "data")
    if not os.path.exists(raw):
        sh([a.bin, "gen-criteo", "--rows", str(a.rows), "--out", raw, "--seed", "11"])
    if not os.path.exists(os.path.join(data, "train.scd")):
        sh([a.bin, "prepare", "--config", os.path.join(ROOT, "configs", "criteo.yaml"), "--out", data],
           env=dict(ENV, SEMCTR_CRITEO=raw))

    # 1. throughput on this machine, the cases alternating
    cases = [(1, 1), (2, 1), (1, 2)]
    steps = max(1, a.samples // a.batch)
    sps = {c: [] for c in cases}
    last = {}
    for rep in range(a.repeats):
        for c in cases:
            r = train(a, data, c[0], c[1], a.batch, steps, a.model)
            sps[c].append(r["samples_per_s"])
            last[c] = r
        print(f"repeat {rep + 1}: " + ", ".join(f"{c[0]}x{c[1]} {sps[c][-1]:.0f}" for c in cases), file=sys.stderr)
    med = {c: statistics.median(v) for c, v in sps.items()}
    two = last[(2, 1)]["dist"]

    # 2. per slice size of the modelled clusters: 1-thread compute time of a step, embedding bytes one slice sends.
    # The compute time is that of the fastest of 3 runs: other work on the machine only ever slows a run down,
    # and the model is of machines that do nothing else.
    machines = (1, 2, 8, 64)
    per_slice = {}
    for b in sorted({a.batch // n for n in machines}):
        st = max(20, 60_000 // b)
        runs = [train(a, data, 1, 1, b, st, a.model)["samples_per_s"] for _ in range(3)]
        t1 = max(runs)
        d = train(a, data, 2, 1, 2 * b, max(10, st // 2), a.model)["dist"]
        per_slice[b] = {"step_compute_s": b / t1, "samples_per_s_1thread": t1, "samples_per_s_runs": runs,
                        "sparse_bytes_per_rank": d["sparse_bytes_sent_per_step"],
                        "dense_bytes": d["dense_bytes_per_step"]}
        print(f"slice {b}: {t1:.0f} samples/s, {d['sparse_bytes_sent_per_step']:.0f} embedding bytes", file=sys.stderr)

    # 3. the model: global batch a.batch over N machines (strong scaling: the same model as 1 process)
    dense = two["dense_bytes_per_step"]
    model_rows = []
    for n in machines:
        b = a.batch // n
        compute, sparse = per_slice[b]["step_compute_s"], per_slice[b]["sparse_bytes_per_rank"]
        t_dense = ring_allreduce_s(n, dense) if n > 1 else 0.0
        t_sparse = ring_allgather_s(n, sparse) if n > 1 else 0.0
        step = compute + t_dense + t_sparse
        model_rows.append({"machines": n, "slice_rows": b, "compute_s": compute, "dense_allreduce_s": t_dense,
                           "sparse_bytes_per_rank": sparse, "sparse_allgather_s": t_sparse, "step_s": step,
                           "samples_per_s": a.batch / step})

    cpu = platform.processor() or "unknown"
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    res = {"name": "mpi-scaling", "date": datetime.date.today().isoformat(),
           "command": " ".join(["python3", "bench/mpi_scaling.py"] + sys.argv[1:]),
           "machine": {"cpu": cpu, "cores": os.cpu_count(), "load_avg_at_start": load_start,
                       "load_avg_at_end": os.getloadavg()[0], "gpu": None},
           "model": a.model, "global_batch": a.batch, "rows": a.rows, "repeats": a.repeats, "steps_per_run": steps,
           "measured": [{"ranks": c[0], "threads": c[1], "samples_per_s_median": med[c], "samples_per_s_runs": sps[c]}
                        for c in cases],
           "bytes_per_step_2_ranks": two, "per_slice": per_slice,
           "cluster_model": {"link_bytes_per_s": LINK_BYTES_PER_S, "alpha_s": ALPHA_S, "rows": model_rows}}
    with open(RESULT + ".json", "w") as f:
        json.dump(res, f, indent=1)
    render(res)


def render(res):
    """bench/results/mpi-scaling.md from the results (also: --render, from the .json)."""
    mach, B, steps, two = res["machine"], res["global_batch"], res["steps_per_run"], res["bytes_per_step_2_ranks"]
    med = {(m["ranks"], m["threads"]): m["samples_per_s_median"] for m in res["measured"]}
    per_slice = {int(k): v for k, v in res["per_slice"].items()}
    cm = res["cluster_model"]
    W, alpha, rows = cm["link_bytes_per_s"], cm["alpha_s"], cm["rows"]
    base = rows[0]["samples_per_s"]
    r12, r21 = med[(2, 1)] / med[(1, 1)], med[(1, 2)] / med[(1, 1)]
    L = [f"# Data-parallel training: {res['model']}, global batch {B}, Criteo-shaped rows", "",
         f"{res['date']}, {mach['cpu']}, {mach['cores']} cores, shared with other work (load average "
         f"{mach['load_avg_at_start']:.1f} at the start, {mach['load_avg_at_end']:.1f} at the end). "
         f"`{res['command']}` ({res['rows']} rows of `semctr gen-criteo`, configs/criteo.yaml; {steps} steps of {B} "
         f"rows per run, median of {res['repeats']} alternating runs; throughput excludes validation).", "",
         "## Measured on this machine", "",
         "| case | samples/s (median) | vs 1 rank x 1 thread |", "|---|---|---|"]
    for (r, t), v in med.items():
        L.append(f"| {r} rank{'s' if r > 1 else ''} x {t} thread{'s' if t > 1 else ''}"
                 f"{' (mpirun, loopback)' if r > 1 else ''} | {v:.0f} | {v / med[(1, 1)]:.2f}x |")
    L += ["", f"2 ranks x 1 thread: {r12:.2f}x the samples/s of 1 rank x 1 thread; 1 rank x 2 threads: {r21:.2f}x."]
    if max(mach["load_avg_at_start"], mach["load_avg_at_end"]) > mach["cores"]:
        L += ["", f"The machine had more runnable processes than its {mach['cores']} cores during these runs, so the "
              "two-core cases (2 ranks, 2 threads) competed with other work for their second core, and MPI's "
              "waiting ranks spin: these ratios measure that contention more than scaling. The bytes below do "
              "not depend on load."]
    L += ["",
          f"Bytes per step of each rank at 2 ranks (`--json` \"dist\"): dense allreduce payload "
          f"{two['dense_bytes_per_step']:.0f} B (every dense gradient once, plus a 4-byte flag), embedding rows "
          f"sent {two['sparse_bytes_sent_per_step']:.0f} B and received {two['sparse_bytes_recv_per_step']:.0f} B; "
          f"{two['comm_s']:.3f} s inside the collectives over the run's {steps} steps (presumably mostly one rank "
          "waiting for the other to finish its slice on the busy cores: these are about 3 MB a step over shared "
          "memory).", "",
          "Embedding rows one rank's slice sends per step (ids + gradient rows of the rows it touched; measured "
          "with 2 ranks), and the compute time of one step of that slice on 1 thread (the fastest of 3 runs: other "
          "work only slows a run down, and the model below is of machines doing nothing else):", "",
          "| slice rows | embedding bytes sent | 1-thread step compute (ms) | samples/s of the 3 runs |",
          "|---|---|---|---|"]
    for b, ps in sorted(per_slice.items()):
        L.append(f"| {b} | {ps['sparse_bytes_per_rank']:.0f} | {ps['step_compute_s'] * 1e3:.2f} | "
                 f"{', '.join(f'{v:.0f}' for v in ps['samples_per_s_runs'])} |")
    spread = max(max(ps["samples_per_s_runs"]) / min(ps["samples_per_s_runs"]) for ps in per_slice.values())
    L += ["", f"Runs of one size differ by up to {spread:.2f}x here; the compute column of the model below carries "
          "that uncertainty (its bytes are exact)."]
    L += ["", "## Modelled: the same global batch on 8 and 64 machines, 25 Gb/s", "",
          f"One rank per machine; each machine computes its slice of B = {B} rows as one core of this machine does "
          f"(the step time of that slice size, table above). Link bandwidth W = 25 Gb/s = {W:.4g} B/s, per-hop "
          f"latency a = {alpha * 1e6:.0f} us (assumed). Ring collectives:", "",
          f"- dense: allreduce of S_d = {two['dense_bytes_per_step']:.0f} B: t_d = 2(N-1)/N * S_d / W + 2(N-1) a",
          "- embeddings: allgather of each rank's rows S_s(B/N): t_s = (N-1) * S_s / W + (N-1) a",
          "- step time T(N) = compute(B/N) + t_d + t_s; samples/s = B / T(N)", "",
          "| machines N | slice rows | compute (ms) | t_d (ms) | S_s per rank (B) | t_s (ms) | step (ms) | samples/s | speed-up |",
          "|---|---|---|---|---|---|---|---|---|"]
    for m in rows:
        L.append(f"| {m['machines']} | {m['slice_rows']} | {m['compute_s'] * 1e3:.2f} | "
                 f"{m['dense_allreduce_s'] * 1e3:.3f} | {m['sparse_bytes_per_rank']:.0f} | "
                 f"{m['sparse_allgather_s'] * 1e3:.3f} | {m['step_s'] * 1e3:.2f} | {m['samples_per_s']:.0f} | "
                 f"{m['samples_per_s'] / base:.1f}x |")
    m8, m64 = rows[2], rows[3]
    small, large = per_slice[min(per_slice)], per_slice[max(per_slice)]
    comm64 = m64["dense_allreduce_s"] + m64["sparse_allgather_s"]
    L += ["", f"For example N = 8: t_d = 2*7/8*{two['dense_bytes_per_step']:.0f}/{W:.4g} + 14*{alpha:g} = "
          f"{m8['dense_allreduce_s'] * 1e3:.3f} ms; t_s = 7*{m8['sparse_bytes_per_rank']:.0f}/{W:.4g} + 7*{alpha:g} = "
          f"{m8['sparse_allgather_s'] * 1e3:.3f} ms; compute {m8['compute_s'] * 1e3:.2f} ms; "
          f"T = {m8['step_s'] * 1e3:.2f} ms, {B}/T = {m8['samples_per_s']:.0f} samples/s.", "",
          f"Two things stop the speed-up short of N. A small slice computes at "
          f"{small['samples_per_s_1thread'] / large['samples_per_s_1thread']:.2f}x the per-row speed of a "
          f"{max(per_slice)}-row one (presumably the per-step costs that do not shrink with the slice, such as the Adam update of every dense weight, and smaller, less efficient GEMMs). "
          f"And communication, {comm64 * 1e3:.2f} ms of the {m64['step_s'] * 1e3:.2f} ms step at 64 machines "
          f"({comm64 / m64['step_s'] * 100:.0f}%), grows with N: the dense allreduce stays near 2 S_d / W + 2(N-1) a, "
          "while every rank receives every other rank's embedding rows. Past ~8 machines a larger global batch "
          "(weak scaling: a different model; tune the learning rate) is the way on; tables sharded by owner "
          "(--shard-embeddings) cut the embedding bytes but, with four rounds of messages a step, not the time in "
          "this latency model (bench/results/mpi-sharding.md). The model leaves "
          "out the merge of received rows (memory speed), stragglers and the per-epoch validation on rank 0."]
    with open(RESULT + ".md", "w") as f:
        f.write("\n".join(L) + "\n")
    print("\n".join(L))

if __name__ == "__main__":
    main()
