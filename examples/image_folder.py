"""Image classification from a folder of files: image_dataset_from_directory + augmentation.

Writes small generated PNG and JPEG images in one folder per class (or reads
yours with `--data DIR`): 'top' images are lit from above, 'bottom' images
from below, with noise and random brightness. The dataset loads images lazily
batch by batch; the model rescales and randomly flips them left-right
(label-preserving) before a small MLP. Under `distkeras-run -np N` /
`mpirun -n N` each rank reads only its share of every batch.

    python examples/image_folder.py [--epochs 6] [--data DIR] [--image-size 16]
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np

import distkeras
from distkeras import layers
from distkeras.models import Sequential
from distkeras.utils import image_dataset_from_directory, save_img, set_random_seed


def write_images(root: str, per_class: int = 60, size: int = 20, seed: int = 0) -> None:
    """Writes `per_class` images lit from the top and from the bottom into root/<class>."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(1.0, 0.0, size)[:, None, None]
    for name, light in (("top", ramp), ("bottom", ramp[::-1])):
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for i in range(per_class):
            h = size + int(rng.integers(-4, 5))  # files of different sizes
            rows = np.interp(np.linspace(0, size - 1, h), np.arange(size), light[:, 0, 0])
            img = rows[:, None, None] * rng.uniform(120, 255) + rng.normal(0, 20, (h, size, 3))
            ext = "png" if i % 2 else "jpg"
            save_img(os.path.join(root, name, f"{i:03d}.{ext}"), np.clip(img, 0, 255), scale=False)


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=None, help="folder with one subfolder per class")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--verbose", type=int, default=2)
    args = parser.parse_args(argv)

    set_random_seed(1)
    size = (args.image_size, args.image_size)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data or tmp
        if args.data is None:
            write_images(root)
        train, val = image_dataset_from_directory(
            root,
            image_size=size,
            batch_size=args.batch_size,
            validation_split=0.25,
            subset="both",
            seed=7,
            verbose=distkeras.distributed.is_coordinator(),
        )
        model = Sequential(
            [
                layers.Rescaling(1 / 255.0, input_shape=(*size, 3)),
                layers.RandomFlip("horizontal", seed=3),
                layers.Flatten(),
                layers.Dense(16, activation="relu"),
                layers.Dense(len(train.class_names), activation="softmax"),
            ]
        )
        model.compile(
            optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"]
        )
        model.fit(train, epochs=args.epochs, validation_data=val, verbose=args.verbose)
        loss, accuracy = model.evaluate(val, verbose=0)
    if distkeras.distributed.is_coordinator():
        print(f"Classes: {train.class_names}")
        print(f"Validation loss: {loss:.4f}")
        print(f"Validation accuracy: {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    main()
