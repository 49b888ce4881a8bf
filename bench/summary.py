#!/usr/bin/env python3
"""Print the served variants of the committed ELEC and MSD experiments
(bench/results/elec-*.json, msd-*.json): test AUC delta to the same seed's
plain backbone, averaged over seeds, and the seeds won. The demo's last step."""
import glob, json, os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVED = ("elec vanilla served", "elec vanilla served cold", "msd", "msd cold")

for path in sorted(glob.glob(os.path.join(ROOT, "bench", "results", "elec-*.json")) +
                   glob.glob(os.path.join(ROOT, "bench", "results", "msd-*.json"))):
    doc = json.load(open(path))
    for r in doc["rows"]:
        dataset, backbone, variant = (r["case"].split(" / ") + ["", "", ""])[:3]
        if r.get("metric") != "auc" or variant not in SERVED or r.get("delta_vs_base") is None:
            continue
        print(f"  {dataset:10s} {backbone:7s} {variant:26s} AUC {r['semctr']:.4f}  "
              f"delta vs plain {r['delta_vs_base']:+.4f}  seeds won {r['seeds_won']}/{r['n_seeds']}")
