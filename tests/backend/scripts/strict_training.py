"""Runs representative training paths and prints their numbers as JSON.

Run once with DISTKERAS_BACKEND=numpy and once with DISTKERAS_BACKEND=strict
(tests/backend/test_strict_backend.py does): under 'strict' any plain-NumPy
array reaching a compute path raises TypeError, and the numbers of both runs
must agree. Usage: python strict_training.py OUT_DIR
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

import distkeras as keras
from distkeras import backend, layers, losses, optimizers
from distkeras.models import Model, Sequential, load_model

OUT = sys.argv[1]
NAME = backend.backend()
results: dict[str, list] = {}


def record(key: str, value) -> None:
    """Stores a (possibly nested list of) Tensor/array/number value as a flat float list."""
    parts = value if isinstance(value, (list, tuple)) else [value]
    flat = [np.asarray(backend.to_numpy(p), dtype="float64").ravel() for p in parts]
    results[key] = np.concatenate(flat).tolist()


def check_device(model, what: str) -> None:
    """Every weight lives in the backend's array type (strict arrays under 'strict')."""
    for w in model.weights:
        if type(w.data) is not type(backend.xp.zeros(1)):
            raise AssertionError(f"{what}: weight {w.path} is a {type(w.data).__name__}")


rng = np.random.default_rng(0)

# 1. MLP with Dropout and Adam: fit / evaluate / predict / train_on_batch.
keras.utils.set_random_seed(1)
x = rng.normal(size=(48, 6)).astype("float32")
y = rng.integers(0, 3, size=48)
mlp = Sequential(
    [
        keras.Input((6,)),
        layers.Dense(8, activation="relu", kernel_regularizer="l2"),
        layers.Dropout(0.3, seed=2),
        layers.Dense(3, activation="softmax"),
    ]
)
mlp.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
hist = mlp.fit(x, y, epochs=2, batch_size=16, validation_split=0.25, verbose=0, shuffle=True)
for k, v in sorted(hist.history.items()):
    record(f"mlp_history_{k}", v)
record("mlp_evaluate", mlp.evaluate(x, y, batch_size=16, verbose=0))
record("mlp_predict", mlp.predict(x[:5], verbose=0))
record("mlp_train_on_batch", mlp.train_on_batch(x[:16], y[:16]))
check_device(mlp, "mlp")

# 2. A CNN step (Conv2D, MaxPooling2D, Flatten, SGD with momentum).
keras.utils.set_random_seed(3)
xi = rng.normal(size=(4, 8, 8, 2)).astype("float32")
yi = rng.integers(0, 2, size=4)
cnn = Sequential(
    [
        keras.Input((8, 8, 2)),
        layers.Conv2D(3, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(2, 2, strides=2),
        layers.Flatten(),
        layers.Dense(2),
    ]
)
cnn.compile(
    optimizer=optimizers.SGD(0.05, momentum=0.9),
    loss=losses.SparseCategoricalCrossentropy(from_logits=True),
)
record("cnn_steps", [cnn.train_on_batch(xi, yi) for _ in range(2)])
record("cnn_predict", cnn.predict(xi, verbose=0))

# 3. Recurrent steps (Embedding -> LSTM, GRU) with RMSprop.
keras.utils.set_random_seed(4)
tokens = rng.integers(1, 10, size=(6, 5))
tokens[:, -1] = 0
ys = rng.normal(size=(6, 1)).astype("float32")
rnn = Sequential(
    [
        keras.Input((5,), dtype="int32"),
        layers.Embedding(10, 4, mask_zero=True),
        layers.LSTM(4, return_sequences=True),
        layers.GRU(3),
        layers.Dense(1),
    ]
)
rnn.compile(optimizer="rmsprop", loss="mse", metrics=["mae"])
record("rnn_fit", rnn.fit(tokens, ys, epochs=2, batch_size=3, verbose=0).history["loss"])
record("rnn_predict", rnn.predict(tokens, verbose=0))

# 4. BatchNormalization (moving statistics) with Adam.
keras.utils.set_random_seed(5)
bn = Sequential([keras.Input((4,)), layers.Dense(5), layers.BatchNormalization(), layers.Dense(1)])
bn.compile(optimizer="adam", loss="mse")
xb = rng.normal(size=(16, 4)).astype("float32")
yb = rng.normal(size=(16, 1)).astype("float32")
bn.fit(xb, yb, epochs=2, batch_size=8, verbose=0)
record("bn_moving", [bn.layers[1].moving_mean, bn.layers[1].moving_variance])
record("bn_predict", bn.predict(xb[:4], verbose=0))

# 5. Functional, two inputs and two outputs, per-output losses and metrics.
keras.utils.set_random_seed(6)
a_in, b_in = keras.Input((3,), name="a"), keras.Input((2,), name="b")
h = layers.Concatenate()([layers.Dense(4, activation="tanh")(a_in), b_in])
out1 = layers.Dense(1, name="reg")(h)
out2 = layers.Dense(2, activation="softmax", name="cls")(h)
fun = Model([a_in, b_in], [out1, out2])
fun.compile(
    optimizer="adamw",
    loss={"reg": "mse", "cls": "sparse_categorical_crossentropy"},
    loss_weights={"reg": 0.5, "cls": 1.0},
    metrics={"cls": ["accuracy"]},
)
xa, xb2 = rng.normal(size=(12, 3)).astype("float32"), rng.normal(size=(12, 2)).astype("float32")
t1, t2 = rng.normal(size=(12, 1)).astype("float32"), rng.integers(0, 2, size=12)
fh = fun.fit([xa, xb2], {"reg": t1, "cls": t2}, epochs=2, batch_size=4, verbose=0)
for k, v in sorted(fh.history.items()):
    record(f"functional_{k}", v)
record("functional_predict", fun.predict([xa[:3], xb2[:3]], verbose=0))

# 6. Save and load the whole model (optimizer state included), keep training.
path = os.path.join(OUT, f"mlp_{NAME}.dkm")
mlp.save(path)
loaded = load_model(path)
check_device(loaded, "loaded")
record("loaded_predict", loaded.predict(x[:5], verbose=0))
record("loaded_train_on_batch", loaded.train_on_batch(x[:16], y[:16]))
for other in ("numpy", "strict"):  # a file saved by the other backend loads here too
    other_path = os.path.join(OUT, f"mlp_{other}.dkm")
    if other != NAME and os.path.exists(other_path):
        record("cross_loaded_predict", load_model(other_path).predict(x[:5], verbose=0))

# 7. A GradientTape loop (tf.keras style) with a custom loss and clipnorm.
keras.utils.set_random_seed(7)
tape_model = Sequential([keras.Input((6,)), layers.Dense(4, activation="gelu"), layers.Dense(3)])
opt = optimizers.Adam(0.01, clipnorm=1.0)
loss_fn = losses.SparseCategoricalCrossentropy(from_logits=True)
tape_losses = []
for _ in range(3):
    with keras.GradientTape() as tape:
        logits = tape_model(x[:16], training=True)
        loss = loss_fn(y[:16], logits) + 1e-3 * keras.ops.sum(keras.ops.square(logits))
    grads = tape.gradient(loss, tape_model.trainable_weights)
    opt.apply_gradients(zip(grads, tape_model.trainable_weights))
    tape_losses.append(float(loss))
record("tape_losses", tape_losses)
record("tape_weights", tape_model.trainable_weights)
check_device(tape_model, "tape")

with open(os.path.join(OUT, f"results_{NAME}.json"), "w") as f:
    json.dump({"backend": NAME, "results": results}, f)
print(f"ok {NAME}")
