"""semctr from Python: prepare, train, evaluate, predict and embed through the
semctr C library (libsemctr.so, built into this package).

Every call goes to the library (include/semctr.h): prepare, train, evaluate
and embed run the `semctr` commands of the same names with the same options
and checks; predict is semctr_score_values. This module only converts
arguments and results. ctypes releases the GIL around each library call, so
other Python threads run while a model trains or scores.

    import semctr
    semctr.prepare("configs/ml-100k.yaml", "runs/ml-100k")
    model = semctr.train(data="runs/ml-100k", model="deepfm", epochs=2)
    print(model.evaluate("runs/ml-100k", "test")["auc"])
    p = model.predict({"user_id": ["196", "186"], "item_id": ["242", "302"]})

See docs/python.md.
"""
import ctypes
import json
import math
import numbers
import os
import tempfile

import numpy as np

__all__ = ["SemctrError", "Model", "prepare", "train", "embed", "version"]

_lib = ctypes.CDLL(os.path.join(os.path.dirname(os.path.abspath(__file__)), "libsemctr.so"))


class _Error(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("message", ctypes.c_char * 1024)]


class _Options(ctypes.Structure):
    _fields_ = [("network", ctypes.c_char_p), ("max_concurrency", ctypes.c_int), ("max_batch_rows", ctypes.c_int),
                ("threads_per_call", ctypes.c_int), ("encoder", ctypes.c_char_p), ("precision", ctypes.c_char_p)]


class _Value(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("str", ctypes.c_char_p), ("num", ctypes.c_double)]


_MISSING, _STRING, _NUMBER = 0, 1, 2
_P = ctypes.POINTER
_StrArr = _P(ctypes.c_char_p)

_lib.semctr_load.argtypes = [_P(ctypes.c_void_p), ctypes.c_char_p, _P(_Options), _P(_Error)]
_lib.semctr_free.argtypes = [ctypes.c_void_p]
_lib.semctr_free.restype = None
_lib.semctr_score_values.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, _StrArr, _P(_Value),
                                     _P(ctypes.c_float), _P(_Error)]
_lib.semctr_input_columns.argtypes = [ctypes.c_void_p, _P(_StrArr)]
for _f in ("semctr_model_network", "semctr_model_backbone"):
    getattr(_lib, _f).argtypes = [ctypes.c_void_p]
    getattr(_lib, _f).restype = ctypes.c_char_p
_lib.semctr_model_n_fields.argtypes = [ctypes.c_void_p]
_lib.semctr_version.restype = ctypes.c_char_p
_lib.semctr_prepare.argtypes = [ctypes.c_char_p, ctypes.c_char_p, _P(_Error)]
_lib.semctr_train.argtypes = [ctypes.c_int, _StrArr, _StrArr, _P(_Error)]
_lib.semctr_evaluate.argtypes = [ctypes.c_int, _StrArr, _StrArr, _P(ctypes.c_void_p), _P(_Error)]
_lib.semctr_embed.argtypes = [ctypes.c_int, _StrArr, ctypes.c_char_p, _P(_P(ctypes.c_float)), _P(ctypes.c_int),
                              _P(_Error)]
_lib.semctr_buffer_free.argtypes = [ctypes.c_void_p]
_lib.semctr_buffer_free.restype = None


class SemctrError(Exception):
    """A failed semctr call; str() is semctr's own message, .code its status."""

    def __init__(self, message, code=-1):
        super().__init__(message)
        self.code = code


def _check(rc, err):
    if rc:
        msg = err.message.decode("utf-8", "replace") or "semctr error %d" % rc
        raise SemctrError(msg, rc)


def _b(s):
    return None if s is None else os.fsencode(s) if isinstance(s, os.PathLike) else str(s).encode("utf-8")


def _options(opts):
    """Keyword options -> the command's flags: msd_texts="d" -> --msd-texts d;
    True -> a bare flag; False and None -> left out."""
    keys, values = [], []
    for k, v in opts.items():
        if v is None or v is False:
            continue
        keys.append(b"--" + k.replace("_", "-").encode())
        values.append(None if v is True else _b(v))
    n = len(keys)
    return n, (ctypes.c_char_p * max(n, 1))(*keys), (ctypes.c_char_p * max(n, 1))(*values)


def version():
    return _lib.semctr_version().decode()


def prepare(config, out):
    """`semctr prepare --config CONFIG --out OUT`: OUT is replaced as a whole."""
    err = _Error()
    _check(_lib.semctr_prepare(_b(config), _b(out), ctypes.byref(err)), err)
    return str(out)


def train(data, model="deepfm", method=None, out=None, **options):
    """`semctr train --data DATA --model MODEL [--method METHOD] --out OUT
    [--key value ...]` and the trained model, loaded. Keyword options are the
    command's flags (epochs=2, msd_texts="dir", lr=1e-3). out=None: a file in
    a fresh temporary folder (Model.path says where)."""
    if out is None:
        out = os.path.join(tempfile.mkdtemp(prefix="semctr-"), "%s.model" % model)
    n, keys, values = _options(dict(data=data, model=model, method=method, out=out, **options))
    err = _Error()
    _check(_lib.semctr_train(n, keys, values, ctypes.byref(err)), err)
    return Model.load(out, network=options.get("network"))


def embed(texts, model=None):
    """Sentence vectors, numpy float32 (len(texts), d), as `semctr embed
    --input` writes them (model: an encoder folder; default all-MiniLM-L6-v2)."""
    if isinstance(texts, (str, bytes)):
        raise TypeError("semctr.embed: texts must be a sequence of strings, not one string")
    texts = list(texts)
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError("semctr.embed: text %d is %s, not a string" % (i, type(t).__name__))
    if not texts:
        raise ValueError("semctr.embed: no texts")
    arr = (ctypes.c_char_p * len(texts))(*[t.encode("utf-8") for t in texts])
    vecs, dim, err = _P(ctypes.c_float)(), ctypes.c_int(), _Error()
    _check(_lib.semctr_embed(len(texts), arr, _b(model), ctypes.byref(vecs), ctypes.byref(dim), ctypes.byref(err)),
           err)
    try:
        return np.ctypeslib.as_array(vecs, shape=(len(texts), dim.value)).copy()
    finally:
        _lib.semctr_buffer_free(vecs)


class Model:
    """A model file loaded for scoring (semctr_load). Model.load(path)."""

    def __init__(self, handle, path, network):
        self._h = handle
        self.path = str(path)
        self._network = network

    @classmethod
    def load(cls, path, network=None, encoder=None, precision=None, threads=0):
        """semctr_load: network "vanilla" / "main" of a multi-network file,
        encoder (MSD) and precision ("f32", "bf16") as in docs/api.md."""
        if not os.path.exists(path):
            raise FileNotFoundError("semctr.Model.load: no model file at %s" % path)
        o = _Options(_b(network), 0, 0, int(threads), _b(encoder), _b(precision))
        h, err = ctypes.c_void_p(), _Error()
        _check(_lib.semctr_load(ctypes.byref(h), _b(path), ctypes.byref(o), ctypes.byref(err)), err)
        return cls(h, path, network)

    def __del__(self):
        h, self._h = getattr(self, "_h", None), None
        if h:
            _lib.semctr_free(h)

    @property
    def backbone(self):
        return _lib.semctr_model_backbone(self._h).decode()

    @property
    def network(self):
        return _lib.semctr_model_network(self._h).decode()

    @property
    def input_columns(self):
        names = _StrArr()
        n = _lib.semctr_input_columns(self._h, ctypes.byref(names))
        return [names[i].decode() for i in range(n)]

    def evaluate(self, data, split="test", **options):
        """`semctr eval --model PATH --data DATA --split SPLIT --json`, as a
        dict (auc, gauc, logloss, ece, n, calibration, ...). Options: the
        command's flags (baseline="other.model", cold=5, threads=2)."""
        n, keys, values = _options(dict(model=self.path, data=data, split=split, network=self._network, **options))
        out, err = ctypes.c_void_p(), _Error()
        _check(_lib.semctr_evaluate(n, keys, values, ctypes.byref(out), ctypes.byref(err)), err)
        try:
            return json.loads(ctypes.string_at(out).decode("utf-8"))
        finally:
            _lib.semctr_buffer_free(out)

    def predict(self, rows):
        """Click probabilities (numpy float32, one per row) of raw rows: a
        pandas DataFrame or a dict of equal-length columns, values as in the
        click log. Strings are passed as they are, numbers as numbers
        (semctr_score_values writes 242 as "242"), None / NaN as missing;
        columns the model does not read are ignored."""
        if hasattr(rows, "columns") and hasattr(rows, "__getitem__"):  # a pandas DataFrame
            cols = {str(c): rows[c].tolist() for c in rows.columns}
        elif isinstance(rows, dict):
            cols = {str(k): list(v.tolist() if hasattr(v, "tolist") else v) for k, v in rows.items()}
        else:
            raise TypeError("semctr predict: rows must be a pandas DataFrame or a dict of columns, not %s"
                            % type(rows).__name__)
        lengths = {k: len(v) for k, v in cols.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError("semctr predict: columns have different lengths: %s" % lengths)
        n_rows = next(iter(lengths.values()), 0)
        # Only the columns the model reads are converted: the rest would be ignored anyway.
        used = set(self.input_columns)
        names = [k for k in cols if k in used]
        scores = np.zeros(n_rows, dtype=np.float32)
        if n_rows == 0:
            return scores
        cells = (_Value * (n_rows * max(len(names), 1)))()
        keep = []  # the encoded strings must outlive the call
        for c, name in enumerate(names):
            for r, v in enumerate(cols[name]):
                cell = cells[r * len(names) + c]
                if v is None or (isinstance(v, float) and math.isnan(v)):
                    cell.type = _MISSING
                elif isinstance(v, bool) or not isinstance(v, numbers.Real):
                    s = str(v).encode("utf-8")
                    keep.append(s)
                    cell.type, cell.str = _STRING, s
                else:
                    cell.type, cell.num = _NUMBER, float(v)
        carr = (ctypes.c_char_p * max(len(names), 1))(*[n.encode() for n in names])
        err = _Error()
        _check(_lib.semctr_score_values(self._h, n_rows, len(names), carr, cells,
                                        scores.ctypes.data_as(_P(ctypes.c_float)), ctypes.byref(err)), err)
        return scores

    def __repr__(self):
        return "semctr.Model(%r, backbone=%r, network=%r)" % (self.path, self.backbone, self.network)
