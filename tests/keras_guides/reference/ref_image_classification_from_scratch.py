"""Keras 3 figures for test_image_classification_from_scratch.py.

Keras 3's `image_dataset_from_directory` needs TensorFlow, which the reference
environment lacks, and this one has no Pillow: the images are `_data.pet_images`
as arrays, split 64 / 16 at random, and the augmentation is the example's
"option 1" (inside the model, active only in training) in place of its
`train_ds.map` (the same layers on the same training batches).
"""

import keras
import numpy as np
from keras import layers

from tests.keras_guides import _data, _image_classification
from tests.keras_guides.reference._common import over_seeds

IMAGE_SIZE = (24, 24)


def build():
    model = _image_classification.make_model(keras, IMAGE_SIZE + (3,), 2)
    model.set_weights(_data.initial_weights(model.get_weights(), keep_vectors=True))
    return model


def forward():
    images, _ = _data.pet_images()
    model = build()
    features = keras.Model(model.inputs, model.layers[-3].output)  # GlobalAveragePooling2D
    pooled = features.predict(images[::20].astype("float32"), verbose=0)
    print("pooled feature sums", np.round(pooled.sum(axis=1), 6).tolist())
    print("pooled feature norms", np.round(np.linalg.norm(pooled, axis=1), 6).tolist())


def train(seed):
    images, labels = _data.pet_images()
    order = np.random.default_rng(seed).permutation(len(images))
    train_idx, val_idx = order[:64], order[64:]
    augmentation = [layers.RandomFlip("horizontal"), layers.RandomRotation(0.1)]
    inner = build()
    inputs = keras.Input(IMAGE_SIZE + (3,))
    x = inputs
    for layer in augmentation:
        x = layer(x)
    model = keras.Model(inputs, inner(x))
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy(name="acc")],
    )
    h = model.fit(
        images[train_idx].astype("float32"),
        labels[train_idx],
        batch_size=16,
        epochs=6,
        validation_data=(images[val_idx].astype("float32"), labels[val_idx]),
        verbose=0,
    )
    return {"acc": h.history["acc"][-1], "val_acc": h.history["val_acc"][-1]}


if __name__ == "__main__":
    forward()
    over_seeds(train, seeds=(1, 2, 3, 4, 5))
