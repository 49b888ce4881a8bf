#!/usr/bin/env python3
"""Compare the float32 tensors of two semctr container files (model files or
checkpoints): same entries, same shapes, and every value within
|a - b| <= atol + rtol * |b|. Prints the largest difference per tensor and
exits 1 when a tensor is missing, has another size, or is out of tolerance.

Used by tests/mpi_tests.sh: N ranks and one process with the same global
batch must train the same model up to the order of float additions.
The format (src/train/container.h): magic "SCTRMODL", u32 version, u32 0,
u64 header length H, H bytes of JSON with "entries" [{name, dtype, offset,
bytes}], padding to 64, then the data section (offsets relative to it)."""
import argparse
import array
import json
import struct
import sys


def read_tensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:8] != b"SCTRMODL":
        sys.exit(f"{path}: not a semctr container file")
    (hlen,) = struct.unpack_from("<Q", raw, 16)
    header = json.loads(raw[24:24 + hlen])
    data = (24 + hlen + 63) // 64 * 64
    out = {}
    for e in header["entries"]:
        if e["dtype"] != "f32":
            continue
        a = array.array("f")
        a.frombytes(raw[data + e["offset"]:data + e["offset"] + e["bytes"]])
        if sys.byteorder != "little":
            a.byteswap()
        out[e["name"]] = a
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--atol", type=float, default=1e-4)
    ap.add_argument("--rtol", type=float, default=1e-2)
    ap.add_argument("--prefix", default="", help="compare only tensors whose name starts with this")
    args = ap.parse_args()
    ta, tb = read_tensors(args.a), read_tensors(args.b)
    names = sorted(n for n in set(ta) | set(tb) if n.startswith(args.prefix))
    bad = 0
    worst = 0.0
    for n in names:
        if n not in ta or n not in tb or len(ta[n]) != len(tb[n]):
            print(f"{n}: missing or of another size in one file")
            bad += 1
            continue
        dmax, excess = 0.0, 0.0
        for x, y in zip(ta[n], tb[n]):
            d = abs(x - y)
            dmax = max(dmax, d)
            excess = max(excess, d - (args.atol + args.rtol * abs(y)))
        worst = max(worst, dmax)
        ok = excess <= 0
        bad += not ok
        print(f"{n}: {len(ta[n])} values, max |diff| {dmax:.3g}{'' if ok else '  OUT OF TOLERANCE'}")
    print(f"{len(names)} tensors, max |diff| {worst:.3g} (tolerance {args.atol:g} + {args.rtol:g}*|value|): "
          f"{'same model' if not bad else f'{bad} tensors differ'}")
    return 1 if bad or not names else 0


if __name__ == "__main__":
    sys.exit(main())
