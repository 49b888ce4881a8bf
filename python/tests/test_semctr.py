"""The Python package against the semctr command line: the same numbers.

Run by tests/python_check.sh (make test-python, part of make check), which
installs the package into a venv; needs SEMCTR_BIN (the CLI built from the
same sources), SEMCTR_DATA (ml-100k) and the default encoder in the cache
(make model)."""
import json
import os
import subprocess
import threading
import time

import numpy as np
import pandas as pd
import pytest

import semctr

BIN = os.environ["SEMCTR_BIN"]
DATA = os.environ["SEMCTR_DATA"]
CONFIG = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "ml-100k.yaml")


def cli(*args):
    r = subprocess.run([BIN, *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("ml") / "ml-100k")
    assert semctr.prepare(CONFIG, out) == out
    assert os.path.exists(os.path.join(out, "test.scd"))
    return out


@pytest.fixture(scope="module")
def model(prepared, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("model") / "deepfm.model")
    m = semctr.train(data=prepared, model="deepfm", epochs=1, threads=2, seed=7, out=out)
    assert m.path == out and m.backbone == "deepfm"
    return m


def test_evaluate_equals_cli(model, prepared):
    got = model.evaluate(prepared, "test")
    want = json.loads(cli("eval", "--model", model.path, "--data", prepared, "--split", "test", "--json"))
    for d in (got, want):
        d.pop("score_ms_per_1000")  # a timing
    assert got == want
    assert 0.6 < got["auc"] < 0.8 and got["n"] == 10000
    cold = model.evaluate(prepared, "valid", cold=5)
    assert cold["split"] == "valid" and "cold" in cold


def test_predict_equals_cli(model, tmp_path):
    df = pd.read_csv(os.path.join(DATA, "ml-100k", "u.data"), sep="\t",
                     names=["user_id", "item_id", "rating", "timestamp"], nrows=2000)
    df.loc[3, "item_id"] = 999999  # unknown: the OOV bucket in both
    csv, out = tmp_path / "rows.csv", tmp_path / "scores.csv"
    df.to_csv(csv, index=False)
    cli("predict", "--model", model.path, "--input", str(csv), "--output", str(out))
    want = pd.read_csv(out)["score"].to_numpy()
    got = model.predict(df)
    assert got.dtype == np.float32 and got.shape == (2000,)
    assert np.max(np.abs(got - want)) < 1e-6
    # a dict of arrays, strings as in the click log, extra columns ignored
    d = {"user_id": df["user_id"].astype(str).to_numpy(), "item_id": df["item_id"].astype(str).tolist(),
         "unused": np.zeros(2000)}
    assert np.max(np.abs(model.predict(d) - want)) < 1e-6
    # reloading the file gives the same scores
    again = semctr.Model.load(model.path).predict(df.head(10))
    assert np.array_equal(again, got[:10])


def test_embed_equals_cli():
    texts = ["Toy Story (1995). Genres: Animation, Children's, Comedy.", "Misérables, Les (1995)", "a\nb"]
    got = semctr.embed(texts)
    assert got.shape == (3, 384) and got.dtype == np.float32
    for i, t in enumerate(texts):
        want = np.array(cli("embed", "--text", t.replace("\n", " ")).split(), dtype=np.float64)
        assert np.max(np.abs(got[i] - want)) < 1e-6, t


def test_errors_carry_semctr_messages(prepared, tmp_path):
    with pytest.raises(semctr.SemctrError, match="is a directory"):
        semctr.Model.load(prepared)
    with pytest.raises(FileNotFoundError, match="nope.model"):
        semctr.Model.load(str(tmp_path / "nope.model"))
    with pytest.raises(semctr.SemctrError, match="schema.scs: cannot open"):
        semctr.train(data=str(tmp_path / "missing"), model="deepfm", epochs=1)
    with pytest.raises(semctr.SemctrError, match="bogus"):
        semctr.train(data=prepared, model="bogus", epochs=1, out=str(tmp_path / "x.model"))
    with pytest.raises(semctr.SemctrError, match="--epochs"):
        semctr.train(data=prepared, model="deepfm", epochs=0, out=str(tmp_path / "x.model"))
    with pytest.raises(semctr.SemctrError, match="unknown option .--no-such-option."):
        semctr.train(data=prepared, model="deepfm", no_such_option=1, out=str(tmp_path / "x.model"))
    with pytest.raises(semctr.SemctrError, match="nope.yaml"):
        semctr.prepare(str(tmp_path / "nope.yaml"), str(tmp_path / "out"))
    with pytest.raises(TypeError, match="not one string"):
        semctr.embed("one string")


def test_predict_bad_input(model):
    with pytest.raises(TypeError, match="DataFrame or a dict"):
        model.predict([["196", "242"]])
    with pytest.raises(ValueError, match="different lengths"):
        model.predict({"user_id": ["196", "186"], "item_id": ["242"]})
    assert model.predict({"user_id": []}).shape == (0,)


def test_gil_released_while_training(prepared, tmp_path):
    # Another Python thread keeps running while the library trains: with the
    # GIL held it would count nothing until training returned.
    ticks, done = [0], threading.Event()

    def count():
        while not done.is_set():
            ticks[0] += 1
            time.sleep(0.001)

    t = threading.Thread(target=count)
    t.start()
    t0 = time.time()
    semctr.train(data=prepared, model="deepfm", epochs=1, threads=1, out=str(tmp_path / "d.model"))
    elapsed = time.time() - t0
    done.set()
    t.join()
    assert elapsed > 0.1 and ticks[0] > 50, (elapsed, ticks[0])


def test_ctrl_c_stops_training_and_python_keeps_its_handler(prepared, tmp_path):
    import signal
    # SIGINT while the library trains stops the training with semctr's
    # "interrupted" error (the command's own handling)...
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(semctr.SemctrError, match="interrupt"):
        semctr.train(data=prepared, model="deepfm", epochs=20, patience=20, threads=1, out=str(tmp_path / "i.model"))
    timer.join()
    # ...after which Ctrl-C is Python's again, and the next call runs whole.
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)
    m = semctr.train(data=prepared, model="lr", epochs=1, out=str(tmp_path / "after.model"))
    assert m.evaluate(prepared, "valid")["auc"] > 0.6
