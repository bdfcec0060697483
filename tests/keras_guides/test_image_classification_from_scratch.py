"""keras.io example "Image classification from scratch", step by step.

JPEG files on disk in PetImages/{Cat,Dog}, the example's filter deleting
files without "JFIF" in their header, `keras.utils.image_dataset_from_directory`
(validation_split 0.2, subset "both", seed 1337), data augmentation by a list
of layers (RandomFlip, RandomRotation) mapped over the training batches, the
small Xception (Rescaling, Conv2D/SeparableConv2D + BatchNormalization,
residual projections added with `layers.add`, GlobalAveragePooling2D,
Dropout, a logit), Adam with BinaryCrossentropy(from_logits=True) and
BinaryAccuracy(name="acc"), ModelCheckpoint("save_at_{epoch}.keras"), then
inference on one file through `load_img`, `img_to_array`, `ops.expand_dims` and
`ops.sigmoid`. Stand-in data: `_data.pet_images` (80 striped 24x24 images,
Cat horizontal, Dog vertical) in place of 25,000 photos of 180x180; widths in
`_image_classification`. Keras figures from
`reference/ref_image_classification_from_scratch.py`.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import distkeras as keras
from distkeras import layers
from tests.keras_guides import _data, _image_classification

pytest.importorskip("PIL")

# Keras 3.15.1 (JAX backend), the model at `_data.initial_weights(keep_vectors=True)`:
# GlobalAveragePooling2D features of images 0, 20, 40, 60 (as float32 arrays), their
# per-image sums and 2-norms. Deterministic: float32 rounding only.
KERAS_POOLED_SUMS = [0.225391, 0.479823, 0.552397, 0.552095]
KERAS_POOLED_NORMS = [0.060797, 0.132031, 0.144405, 0.147607]
# Keras, seeds 1-5, 6 epochs of batch 16 on 64 of the images: final training accuracy
# mean 0.956 (0.875-1.0; chance is 0.5). Augmentation and order are random and the
# reference splits and shuffles arrays (no directory loader there), so we ask for
# 0.75. The validation accuracy after so few steps reflects BatchNormalization's
# moving statistics (0.25-0.69 in Keras), so it is not compared.
KERAS_TRAIN_ACC_MEAN = 0.956


def _write_pet_images(root):
    from PIL import Image

    images, labels = _data.pet_images()
    for folder in ("Cat", "Dog"):
        os.makedirs(os.path.join(root, folder))
    for i, (img, label) in enumerate(zip(images, labels, strict=True)):
        folder = "Dog" if label else "Cat"
        Image.fromarray(img).save(os.path.join(root, folder, f"{i}.jpg"), quality=95)
    with open(os.path.join(root, "Cat", "666.jpg"), "wb") as f:
        f.write(b"not an image at all")  # the example's corrupted file


def test_forward_pass_matches_keras():
    images, _ = _data.pet_images()
    model = _image_classification.make_model(keras, (24, 24, 3), 2)
    model.set_weights(_data.initial_weights(model.get_weights(), keep_vectors=True))
    features = keras.Model(model.inputs, model.layers[-3].output)
    assert isinstance(model.layers[-3], layers.GlobalAveragePooling2D)
    pooled = features.predict(images[::20].astype("float32"), verbose=0)
    np.testing.assert_allclose(pooled.sum(axis=1), KERAS_POOLED_SUMS, rtol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(pooled, axis=1), KERAS_POOLED_NORMS, rtol=1e-4)


def test_image_classification_from_scratch(tmp_path):
    keras.utils.set_random_seed(1)
    root = str(tmp_path / "PetImages")
    _write_pet_images(root)

    num_skipped = 0
    for folder_name in ("Cat", "Dog"):
        folder_path = os.path.join(root, folder_name)
        for fname in os.listdir(folder_path):
            fpath = os.path.join(folder_path, fname)
            try:
                fobj = open(fpath, "rb")  # noqa: SIM115 - the example's code
                is_jfif = b"JFIF" in fobj.peek(10)
            finally:
                fobj.close()
            if not is_jfif:
                num_skipped += 1
                os.remove(fpath)
    assert num_skipped == 1

    image_size = (24, 24)
    batch_size = 16
    train_ds, val_ds = keras.utils.image_dataset_from_directory(
        root,
        validation_split=0.2,
        subset="both",
        seed=1337,
        image_size=image_size,
        batch_size=batch_size,
    )
    assert train_ds.class_names == ["Cat", "Dog"] and len(train_ds) == 4 and len(val_ds) == 1
    for images, labels in train_ds.take(1):
        assert images.shape == (16, 24, 24, 3) and images.dtype == np.float32
        assert images[0].numpy().astype("uint8").shape == (24, 24, 3) and int(labels[0]) in (0, 1)

    data_augmentation_layers = [layers.RandomFlip("horizontal"), layers.RandomRotation(0.1)]

    def data_augmentation(images):
        for layer in data_augmentation_layers:
            images = layer(images)
        return images

    augmented = keras.ops.convert_to_numpy(data_augmentation(images))
    assert augmented.shape == images.shape and not np.allclose(augmented, images)

    train_ds = train_ds.map(
        lambda img, label: (data_augmentation(img), label), num_parallel_calls=-1
    )
    train_ds = train_ds.prefetch(-1)  # tf.data.AUTOTUNE is -1
    val_ds = val_ds.prefetch(-1)

    model = _image_classification.make_model(keras, input_shape=image_size + (3,), num_classes=2)
    model.set_weights(_data.initial_weights(model.get_weights(), keep_vectors=True))
    epochs = 6
    callbacks = [keras.callbacks.ModelCheckpoint(str(tmp_path / "save_at_{epoch}.keras"))]
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy(name="acc")],
    )
    history = model.fit(
        train_ds, epochs=epochs, callbacks=callbacks, validation_data=val_ds, verbose=0
    )
    assert set(history.history) == {"loss", "acc", "val_loss", "val_acc"}
    assert history.history["acc"][-1] >= KERAS_TRAIN_ACC_MEAN - 0.2
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert sorted(os.listdir(tmp_path))[:2] == ["PetImages", "save_at_1.keras"]
    assert os.path.exists(tmp_path / "save_at_6.keras")

    img = keras.utils.load_img(os.path.join(root, "Dog", "45.jpg"), target_size=image_size)
    img_array = keras.utils.img_to_array(img)
    img_array = keras.ops.expand_dims(img_array, 0)  # Create batch axis
    predictions = model.predict(img_array, verbose=0)
    score = float(keras.ops.sigmoid(predictions[0][0]))
    assert 0.0 <= score <= 1.0
    reloaded = keras.models.load_model(str(tmp_path / "save_at_6.keras"))
    np.testing.assert_allclose(reloaded.predict(img_array, verbose=0), predictions, rtol=1e-5)
