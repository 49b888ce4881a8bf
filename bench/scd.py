"""Read semctr's binary split files (.scd) with numpy, so that Python peers
(DeepCTR-Torch) train on exactly the rows, ids and values semctr trains on.
Layout: src/data/dataset.h (version 2; the checksum is not verified here:
the files come from a `semctr prepare` that semctr itself reads and checks)."""
import struct
import numpy as np

KINDS = {0: "categorical", 1: "numeric", 2: "multi", 3: "sequence"}


def read_scd(path):
    with open(path, "rb") as f:
        buf = f.read()
    if buf[:8] != b"SCDSPLIT":
        raise ValueError(f"{path}: not a semctr split file")
    version, F, N, cap, flags, T = struct.unpack_from("<IIqqII", buf, 8)
    if version != 2:
        raise ValueError(f"{path}: split version {version}, this reader knows 2; re-run `semctr prepare`")
    off = 64
    fields = []
    for _ in range(F):
        name = buf[off:off + 64].split(b"\0", 1)[0].decode()
        kind, width, vocab, pooling, share = struct.unpack_from("<iiqii", buf, off + 64)
        fields.append(dict(name=name, kind=KINDS[kind], width=width, vocab_size=vocab,
                           pooling=pooling, share_with=share))
        off += 88
    off += 64 * T
    cols = []
    for _ in range(2 + F + T):
        cols.append(struct.unpack_from("<QQ", buf, off))
        off += 16
    label = np.frombuffer(buf, np.float32, N, cols[0][0]).copy()
    group = np.frombuffer(buf, np.int32, N, cols[1][0]).copy() if cols[1][1] else None
    data = {}
    for i, fd in enumerate(fields):
        o = cols[2 + i][0]
        if fd["kind"] == "numeric":
            data[fd["name"]] = np.frombuffer(buf, np.float32, N, o).copy()
        else:
            a = np.frombuffer(buf, np.int32, N * fd["width"], o).reshape(N, fd["width"]).copy()
            data[fd["name"]] = a[:, 0] if fd["kind"] == "categorical" else a
    return fields, label, group, data


def deepctr_columns(fields, embed):
    """DeepCTR-Torch feature columns for the fields of a split: numeric -> DenseFeat,
    categorical -> SparseFeat, multi and sequence -> VarLenSparseFeat (mean or sum
    pooling as semctr's), a shared table (share_with) -> the same embedding_name."""
    from deepctr_torch.inputs import SparseFeat, VarLenSparseFeat, DenseFeat
    cols = []
    for f in fields:
        emb_name = fields[f["share_with"]]["name"] if f["share_with"] >= 0 else f["name"]
        if f["kind"] == "numeric":
            cols.append(DenseFeat(f["name"], 1))
        elif f["kind"] == "categorical":
            cols.append(SparseFeat(f["name"], f["vocab_size"], embed, embedding_name=emb_name))
        else:
            cols.append(VarLenSparseFeat(SparseFeat(f["name"], f["vocab_size"], embed, embedding_name=emb_name),
                                         maxlen=f["width"], combiner="mean" if f["pooling"] == 0 else "sum"))
    return cols
