"""Under mpirun: which samples each rank reads from real tf.data pipelines, and a real fit.

usage: tf_data_shares.py OUT_PREFIX   (writes OUT_PREFIX.rank{r}.json)

Sources (19 samples whose x is their id, batches of 4): a seeded `shuffle().batch()`
pipeline (sharded by distkeras with `shard(size, rank)`), and one the user sharded
already (`shard(2, rank)` with `AutoShardPolicy.OFF`, taken as this rank's share).
Then `fit` and `evaluate` on `from_tensor_slices((x, y)).batch(4)`; the test compares
the weights with one process on the same global batches.
"""

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import distkeras  # noqa: E402
from distkeras import layers  # noqa: E402
from distkeras.models import Sequential  # noqa: E402
from distkeras.models import data_sources as ds  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from tests.models.data_fakes import ids_regression  # noqa: E402

out = sys.argv[1]
comm = distkeras.distributed.initialize()
N, BS = 19, 4
ids = np.arange(N, dtype=np.float32)[:, None]
own = tf.data.Dataset.from_tensor_slices((ids, 2 * ids)).shard(comm.size, comm.rank).batch(BS)
options = tf.data.Options()
options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
sources = {
    "shuffled": tf.data.Dataset.from_tensor_slices((ids, 2 * ids)).shuffle(N, seed=3).batch(BS),
    "user_sharded": own.with_options(options),
}
model = Sequential([layers.Dense(1, input_shape=(1,))])
model.compile("sgd", "mse")
seen = {}
for name, data in sources.items():
    adapter = model._make_adapter(data, None, None, BS, True, None, seed=7)
    seen[name] = [
        [[x[:, 0].astype(int).tolist(), int(gbs)] for x, _, _, gbs in adapter.batches(epoch)]
        for epoch in range(2)
    ]
x, y = ids_regression(N)
pipeline = tf.data.Dataset.from_tensor_slices((x, y)).batch(BS)
distkeras.utils.set_random_seed(1)
m = Sequential([layers.Dense(1, input_shape=(1,))])
m.compile("sgd", "mse", metrics=["mae"])
m.fit(pipeline.prefetch(tf.data.AUTOTUNE), epochs=2, verbose=0)
record = {
    "seen": seen,
    "card": ds.cardinality(pipeline.shard(comm.size, comm.rank)),
    "weights": [w.tolist() for w in m.get_weights()],
    "evaluate": m.evaluate(pipeline, verbose=0),
    "evaluate_arrays": m.evaluate(x, y, batch_size=2 * BS, verbose=0),
}
Path(f"{out}.rank{comm.rank}.json").write_text(json.dumps(record))
