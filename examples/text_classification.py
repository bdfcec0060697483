"""Sentiment classification of text files: text_dataset_from_directory + TextVectorization.

Writes a small corpus of generated movie reviews as `.txt` files in `pos/` and
`neg/` folders (or reads yours with `--data DIR`), splits it with
`validation_split`, learns a vocabulary with `TextVectorization.adapt`, and
trains a bag-of-words (tf-idf) classifier. The files are read lazily, batch
by batch; under `distkeras-run -np N` / `mpirun -n N` each rank reads only its
share of every batch.

    python examples/text_classification.py [--epochs 8] [--data DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
from typing import Any

import distkeras
from distkeras import layers, optimizers
from distkeras.models import Sequential
from distkeras.utils import PyDataset, set_random_seed, text_dataset_from_directory

POSITIVE = ["great", "wonderful", "loved", "brilliant", "moving", "superb", "fun", "charming"]
NEGATIVE = ["awful", "boring", "hated", "dull", "terrible", "weak", "messy", "tedious"]
NEUTRAL = ["the", "movie", "film", "plot", "actors", "a", "was", "and", "story", "it", "ending"]


def write_corpus(root: str, per_class: int = 150, seed: int = 0) -> None:
    """Writes `per_class` generated reviews into root/pos and root/neg."""
    rng = random.Random(seed)
    for label, words in (("pos", POSITIVE), ("neg", NEGATIVE)):
        os.makedirs(os.path.join(root, label), exist_ok=True)
        for i in range(per_class):
            tokens = rng.choices(NEUTRAL, k=rng.randint(6, 12)) + rng.choices(words, k=2)
            rng.shuffle(tokens)
            text = " ".join(tokens).capitalize() + rng.choice([".", "!", "..."])
            with open(os.path.join(root, label, f"review_{i:04d}.txt"), "w") as f:
                f.write(text)


class Vectorized(PyDataset):
    """Applies a TextVectorization layer to the texts of each batch (lazily, shard by shard)."""

    def __init__(self, texts: Any, vectorizer: layers.TextVectorization):
        super().__init__()
        self.texts, self.vectorizer = texts, vectorizer

    def __len__(self) -> int:
        return len(self.texts)

    def _vectorize(self, batch: tuple) -> tuple:
        x, y = batch
        return self.vectorizer(x).numpy(), y

    def __getitem__(self, index: int) -> tuple:
        return self._vectorize(self.texts[index])

    # The sharded-read hook: in data-parallel fit each rank reads only its slice.
    def batch_length(self, index: int) -> int:
        return self.texts.batch_length(index)

    def get_shard(self, index: int, lo: int, hi: int) -> tuple:
        return self._vectorize(self.texts.get_shard(index, lo, hi))


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=None, help="folder with one subfolder per class")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--verbose", type=int, default=2)
    args = parser.parse_args(argv)

    set_random_seed(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data or tmp
        if args.data is None:
            write_corpus(root)
        train, val = text_dataset_from_directory(
            root,
            batch_size=args.batch_size,
            validation_split=0.2,
            subset="both",
            seed=42,
            verbose=distkeras.distributed.is_coordinator(),
        )
        vectorizer = layers.TextVectorization(max_tokens=500, output_mode="tf_idf")
        vectorizer.adapt(train)  # reads the training texts batch by batch
        num_classes = len(train.class_names)

        model = Sequential(
            [
                layers.Dense(16, activation="relu", input_shape=(vectorizer.vocabulary_size(),)),
                layers.Dropout(0.2),
                layers.Dense(num_classes, activation="softmax"),
            ]
        )
        model.compile(
            optimizer=optimizers.Adam(learning_rate=0.01),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        model.fit(
            Vectorized(train, vectorizer),
            epochs=args.epochs,
            validation_data=Vectorized(val, vectorizer),
            verbose=args.verbose,
        )
        loss, accuracy = model.evaluate(Vectorized(val, vectorizer), verbose=0)
    if distkeras.distributed.is_coordinator():
        print(f"Validation loss: {loss:.4f}")
        print(f"Validation accuracy: {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    main()
