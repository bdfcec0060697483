"""Writes the files of tests/models/data/legacy_order/ with an earlier distkeras release.

Those releases held a functional model's layers in call order, not Keras 3's;
their files must still load. Written once with the release before the change
(main at ff855fe), never by pytest:

    PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=<old checkout> \\
        python tests/models/scripts/legacy_order_files.py tests/models/data/legacy_order

`expected.npz` holds what the loaded objects must hold, keyed by layer,
variable path and slot name (which do not depend on the order).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np


def build(keras):
    """A siamese model whose two orders differ on equal shapes and on the Dropout streams."""
    layers = keras.layers
    shared = layers.Dense(6, name="shared")
    left = keras.Input((6,), name="left")
    right = keras.Input((6,), name="right")
    pre = layers.Dense(6, name="pre")(right)
    pre = layers.Dropout(0.5, seed=1, name="drop_pre")(pre)
    a = layers.Dropout(0.5, seed=2, name="drop_a")(shared(left))
    merged = layers.concatenate([a, shared(pre)], name="merge")
    return keras.Model([left, right], layers.Dense(1, name="head")(merged), name="legacy")


def data(n=16):
    rng = np.random.default_rng(0)
    x = [rng.normal(size=(n, 6)).astype("float32") for _ in range(2)]
    return x, rng.normal(size=(n, 1)).astype("float32")


def expected(model) -> dict:
    """Weights by path, optimizer slots by name, Dropout streams by layer, predictions."""
    out = {f"weight:{w.path}": w.numpy() for w in model.weights}
    for v in model.optimizer.variables:
        out[f"slot:{v.name}"] = v.numpy()
    for layer in model.layers:
        for k, g in enumerate(layer._seed_generators):
            out[f"rng:{layer.name}/{k}"] = np.array(json.dumps(g.get_state()))
    out["predict"] = model.predict(data()[0], verbose=0)
    return out


def main(folder: str) -> None:
    import distkeras as keras

    keras.utils.set_random_seed(3)
    model = build(keras)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    x, y = data()
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    os.makedirs(folder, exist_ok=True)
    model.save(os.path.join(folder, "model.keras"))
    model.save_weights(os.path.join(folder, "model.weights.h5"))
    keras.checkpoint.save(
        {"model": model, "optimizer": model.optimizer}, os.path.join(folder, "ckpt"), step=0
    )
    want = expected(model)

    # A BackupAndRestore backup after epoch 2 of 3, and the uninterrupted run's result.
    def run(epochs, callbacks):
        keras.utils.set_random_seed(3)
        model = build(keras)
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
        model.fit(x, y, batch_size=8, epochs=epochs, shuffle=False, verbose=0, callbacks=callbacks)
        return model

    backup = keras.callbacks.BackupAndRestore(
        os.path.join(folder, "backup"), delete_checkpoint=False
    )
    run(2, [backup])
    for w in run(3, []).weights:
        want[f"resumed:{w.path}"] = w.numpy()
    np.savez(os.path.join(folder, "expected.npz"), **want)


if __name__ == "__main__":
    main(sys.argv[1])
