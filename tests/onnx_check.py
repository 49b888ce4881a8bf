"""ONNX export checks for tests/test_export_onnx.c (run through onnx_check.sh,
which provides onnxruntime, onnx and numpy).

  onnx_check.py scores MODEL.onnx MANIFEST DUMPDIR
      onnx.checker.check_model (full check: types and shapes), then ONNX
      Runtime scores the rows in DUMPDIR -- one raw file per graph input in
      the manifest's order, K.bin (int64 ids or float32 values, row-major),
      and expected.f32, semctr's scores -- and every score must be within
      1e-5 of semctr's.
  onnx_check.py csv DOC.md MANIFEST ROWS.csv PREDICTED.csv
      runs the first ```python block of DOC.md (the documented example) on
      MANIFEST and ROWS.csv, and compares the scores it prints with those of
      `semctr predict` in PREDICTED.csv (within 1e-5).

  onnx_check.py encode MANIFEST ROWS.csv PREDICTED.csv
      encodes ROWS.csv with every encoding docs/onnx.md describes (the
      reference client below), scores with ONNX Runtime and compares with
      `semctr predict` (within 1e-5).

Prints "rows N, max |diff| D"; exits 1 when a check fails."""
import csv, json, math, os, re, subprocess, sys

import numpy as np

TOL = 1e-5


def compare(got, want):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        sys.exit(f"{got.shape[0]} scores, semctr has {want.shape[0]}")
    diff = np.abs(got - want)
    worst = int(np.argmax(diff)) if len(diff) else 0
    print(f"rows {len(want)}, max |diff| {diff.max() if len(diff) else 0:.3g} (row {worst}), "
          f"scores in [{want.min():.4f}, {want.max():.4f}]")
    if not np.all(np.isfinite(got)) or (len(diff) and diff.max() > TOL):
        sys.exit(f"row {worst}: ONNX Runtime {got[worst]!r}, semctr {want[worst]!r} (tolerance {TOL})")


def scores(model, manifest, dump):
    import onnx
    import onnxruntime as ort
    onnx.checker.check_model(model, full_check=True)
    print("checker ok")
    spec = json.load(open(manifest))
    want = np.fromfile(os.path.join(dump, "expected.f32"), dtype=np.float32)
    feed = {}
    for k, x in enumerate(spec["inputs"]):
        a = np.fromfile(os.path.join(dump, f"{k}.bin"), dtype=x["dtype"])
        feed[x["name"]] = a.reshape([len(want)] + x["shape"][1:])
    opt = ort.SessionOptions()
    opt.intra_op_num_threads = 2
    sess = ort.InferenceSession(model, opt, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    if names != ["score", "logit"] or [i.name for i in sess.get_inputs()] != list(feed):
        sys.exit(f"graph outputs {names}, inputs {[i.name for i in sess.get_inputs()]}: not the manifest's")
    score, logit = sess.run(["score", "logit"], feed)
    compare(score, want)
    compare(score, 1 / (1 + np.exp(-logit.astype(np.float64))))


def csv_example(doc, manifest, rows, predicted):
    text = open(doc).read()
    m = re.search(r"```python\n(.*?)```", text, re.S)
    if not m:
        sys.exit(f"{doc}: no ```python block")
    out = subprocess.run([sys.executable, "-c", m.group(1), manifest, rows], capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"the example of {doc} failed:\n{out.stderr}")
    got = [float(v) for v in out.stdout.split()]
    lines = open(predicted).read().split()
    if lines[0] != "score":
        sys.exit(f"{predicted}: not `semctr predict` output")
    compare(got, [float(v) for v in lines[1:]])


def normalize(x, v):
    if x["normalize"] == "standard":
        return (v - x["mean"]) / (x["std"] if x["std"] > 0 else 1)
    if x["normalize"] == "minmax":
        return (v - x["min"]) / (x["max"] - x["min"]) if x["max"] > x["min"] else 0.0
    if x["normalize"] == "log":
        return math.log1p(max(v, 0.0))
    return v


def number(c):
    """The cell as a number, or None (missing, blank, not a number)."""
    try:
        return float(c) if c is not None and c.strip(" ") else None
    except ValueError:
        return None


def encode_input(x, rows, here):
    """Input x of the manifest for raw rows (dicts of cells), as docs/onnx.md says."""
    import xxhash
    table = json.load(open(os.path.join(here, x["file"]))) if "file" in x else {}
    W = x.get("width", 1)

    def pad(ids):
        ids = ids[:W]
        return ids + [0] * (W - len(ids))

    def one(p):
        if "hash_buckets" in x:
            return 2 + xxhash.xxh64_intdigest(p.encode(), 0) % x["hash_buckets"]
        return table.get(p, 1)

    out = []
    for r in rows:
        enc = x["encoding"]
        if enc == "flags":
            out.append(pad([i for col, i in zip(x["columns"], x["ids"]) if (r.get(col) or "").strip(" ") == "1"]))
            continue
        c = r.get(x["column"]) or None  # an empty cell is a missing value
        if c is not None and "pattern" in x:
            m = re.search(x["pattern"], c)
            c = None if not m else m.group(1) if m.re.groups and m.group(1) is not None else m.group(0)
        if enc == "lookup":
            out.append(x["missing"] if c is None else table.get(c, x["missing"]))
        elif enc == "split":
            out.append(pad([one(p) for p in (c or "").split(x["separator"]) if p]))
        elif enc == "hash":
            out.append(x["missing"] if c is None else one(c))
        elif enc == "numeric":
            v = number(c)
            out.append(normalize(x, x["fill"] if v is None else v))
        elif enc == "bucket":
            v = number(c)
            out.append(x["missing"] if v is None else 2 + sum(b <= v for b in x["boundaries"]))
        elif enc == "log2":
            v = number(c)  # a blank cell is the category "", one that is not a number is missing
            key = "" if c is not None and not c.strip(" ") else None if v is None else \
                str(int(math.floor(math.log(v) * math.log(v) if v > 2 else v)))
            out.append(x["missing"] if key is None else one(key))
        else:
            sys.exit(f"input {x['name']}: unknown encoding {enc}")
    return np.array(out, dtype=x["dtype"])


def encode(manifest, rows, predicted):
    import onnxruntime as ort
    spec, here = json.load(open(manifest)), os.path.dirname(manifest)
    rows = list(csv.DictReader(open(rows)))
    feed = {x["name"]: encode_input(x, rows, here) for x in spec["inputs"]}
    sess = ort.InferenceSession(os.path.join(here, spec["model"]), providers=["CPUExecutionProvider"])
    lines = open(predicted).read().split()
    compare(sess.run(["score"], feed)[0], [float(v) for v in lines[1:]])


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    {"scores": scores, "csv": csv_example, "encode": encode}[mode](*args)
