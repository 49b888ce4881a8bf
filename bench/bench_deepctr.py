"""DeepCTR-Torch side of bench_kernels.c: the same Criteo-shaped random data
(13 dense + 26 sparse fields, vocab 100000, D=16, batch 4096), forward +
BCE (sum, as DeepCTR's fit) + backward + Adam per step, torch CPU threads as
given. Usage: python3 bench/bench_deepctr.py [threads] [steps]"""
import sys, time
import numpy as np, torch
from deepctr_torch.inputs import SparseFeat, DenseFeat, get_feature_names
from deepctr_torch.models import DeepFM, DCN

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 10
torch.set_num_threads(threads)
B, V = 4096, 100000
rng = np.random.default_rng(1)
cols = [DenseFeat(f"I{i}", 1) for i in range(1, 14)] + \
       [SparseFeat(f"C{i}", V, embedding_dim=16) for i in range(1, 27)]
X = np.concatenate([rng.random((B, 13)), (2 + (V - 2) * rng.random((B, 26)) ** 3).astype(np.int64)], 1)
x = torch.tensor(X, dtype=torch.float32)
y = torch.tensor((rng.random((B, 1)) < 0.25).astype(np.float32))
for name, make, dnn in [("deepfm", lambda: DeepFM(cols, cols, dnn_hidden_units=(256, 128)), "256-128"),
                        ("dcnv2", lambda: DCN(cols, cols, cross_parameterization="matrix", dnn_hidden_units=(256, 128)), "256-128"),
                        ("deepfm", lambda: DeepFM(cols, cols, dnn_hidden_units=(400, 400, 400)), "400-400-400"),
                        ("dcnv2", lambda: DCN(cols, cols, cross_parameterization="matrix", dnn_hidden_units=(400, 400, 400)), "400-400-400")]:
    m = make()
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    for s in range(steps + 2):
        if s == 2:
            t0 = time.time()
        p = m(x)
        loss = torch.nn.functional.binary_cross_entropy(p, y, reduction="sum") + m.get_regularization_loss()
        opt.zero_grad()
        loss.backward()
        opt.step()
    dt = time.time() - t0
    line = f"deepctr-torch {name:8s} dnn={dnn} threads={threads} batch={B}: {steps * B / dt:.0f} samples/s train\n"
    print(line, end="")
    open("bench/results_kernels.txt", "a").write(line)
