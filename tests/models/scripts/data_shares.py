"""Under mpirun: which samples each rank reads, per global step, for every kind of stream.

usage: data_shares.py OUT_PREFIX [det]   (writes OUT_PREFIX.rank{r}.json)

With `det` (deterministic mode) every rank reads every batch and keeps its slice;
a DistributedSampler is refused there.
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler, IterableDataset, TensorDataset

import distkeras
from distkeras import layers
from distkeras.models import Sequential
from distkeras.utils import PyDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from tests.models.data_fakes import FakeTFDataset, id_batches  # noqa: E402

out = sys.argv[1]
det = len(sys.argv) > 2 and sys.argv[2] == "det"
comm = distkeras.distributed.initialize(deterministic=det)
N, BS = 19, 4
ids = np.arange(N, dtype=np.float32)[:, None]


class Ids(PyDataset):
    def __init__(self, **kw):
        super().__init__(**kw)

    def __len__(self):
        return len(id_batches(N, BS))

    def __getitem__(self, i):
        return list(id_batches(N, BS)[i])  # a list batch, as Keras accepts


class Stream(IterableDataset):
    def __iter__(self):
        for i in range(N):
            yield torch.tensor([float(i)]), torch.tensor([2.0 * i])


def gen():
    while True:
        yield from id_batches(N, BS)


t = torch.arange(N, dtype=torch.float32)[:, None]
t20 = torch.arange(20, dtype=torch.float32)[:, None]
sources = {
    "generator": (gen(), len(id_batches(N, BS))),
    "pydataset": (Ids(), None),
    "pydataset_workers": (Ids(workers=2, max_queue_size=3), None),
    "loader": (DataLoader(TensorDataset(t, 2 * t), batch_size=BS, shuffle=True), None),
    "loader_sampler": (
        DataLoader(
            TensorDataset(t20, 2 * t20),
            batch_size=BS,
            sampler=DistributedSampler(TensorDataset(t20), comm.size, comm.rank, seed=1),
        ),
        None,
    ),
    "iterable_loader": (DataLoader(Stream(), batch_size=BS), None),
    "tfdata": (FakeTFDataset(id_batches(N, BS)), None),
    "torch_dataset": (TensorDataset(t, 2 * t), None),
}
model = Sequential([layers.Dense(1, input_shape=(1,))])
model.compile("sgd", "mse")
refused = None
if det:
    try:
        model._make_adapter(sources.pop("loader_sampler")[0], None, None, 4, True, None)
    except ValueError as e:
        refused = str(e)
seen = {}
for name, (data, steps) in sources.items():
    adapter = model._make_adapter(data, None, None, 4, True, steps, seed=7)
    epochs = []
    for epoch in range(2):
        epochs.append([[x[:, 0].tolist(), int(gbs)] for x, _, _, gbs in adapter.batches(epoch)])
        adapter.on_epoch_end() if hasattr(adapter, "on_epoch_end") else None
    seen[name] = epochs
# A real fit on streams whose shares differ in length (5 batches on 2 ranks).
weights = {}
for name in ("loader", "tfdata"):
    distkeras.utils.set_random_seed(1)
    m = Sequential([layers.Dense(1, input_shape=(1,))])
    m.compile("sgd", "mse")
    data = sources[name][0]
    m.fit(data, epochs=2, verbose=0)
    weights[name] = [w.tolist() for w in m.get_weights()]
# evaluate/predict on rank-local shares equal those on the arrays (exact metric reduction,
# batch order kept by the every-N-th split).
x19 = ids / 19.0
y19 = np.cos(ids)
loader = DataLoader(TensorDataset(torch.from_numpy(x19), torch.from_numpy(y19)), batch_size=BS)
tfdata = FakeTFDataset([(x19[i : i + BS], y19[i : i + BS]) for i in range(0, N, BS)])
m = Sequential([layers.Dense(1, input_shape=(1,))])
m.compile("sgd", "mse", metrics=["mae"])
checks = {
    "evaluate_arrays": m.evaluate(x19, y19, batch_size=2 * BS, verbose=0),
    "evaluate_loader": m.evaluate(loader, verbose=0),
    "evaluate_tfdata": m.evaluate(tfdata, verbose=0),
    # one batch only: rank 1's share is empty from the start
    "evaluate_one_batch": m.evaluate(
        DataLoader(TensorDataset(torch.from_numpy(x19), torch.from_numpy(y19)), batch_size=32),
        verbose=0,
    ),
    "predict_arrays": m.predict(x19, verbose=0).tolist(),
    "predict_loader": m.predict(
        DataLoader(TensorDataset(torch.from_numpy(x19)), batch_size=BS), verbose=0
    ).tolist(),
}
with open(f"{out}.rank{comm.rank}.json", "w") as f:
    json.dump({"seen": seen, "weights": weights, "checks": checks, "refused": refused}, f)
