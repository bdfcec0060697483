"""keras.io example "Text classification from scratch", step by step.

TextVectorization adapted on the training texts, a model on the int
sequences (Embedding, Dropout, Conv1D x 2, GlobalMaxPooling1D, Dense,
sigmoid), then an end-to-end model taking raw strings. Stand-in data: 300
short generated reviews (Python strings, labels int64 (n,)) in place of IMDB's
50,000; sizes scaled down. No Keras figure: Keras 3's TextVectorization needs
TensorFlow, which the reference environment lacks; the checks are the
example's own and Keras's documented vocabulary order (by descending count).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

import distkeras as keras
from distkeras import layers
from tests.keras_guides import _data

MAX_FEATURES, SEQUENCE_LENGTH, EMBEDDING_DIM = 40, 16, 16


def test_text_classification_end_to_end():
    keras.utils.set_random_seed(1)
    texts, labels = _data.review_texts(n=300)
    train_x, train_y, test_x, test_y = texts[:240], labels[:240], texts[240:], labels[240:]

    vectorize_layer = layers.TextVectorization(
        max_tokens=MAX_FEATURES, output_mode="int", output_sequence_length=SEQUENCE_LENGTH
    )
    vectorize_layer.adapt(train_x)
    vocab = vectorize_layer.get_vocabulary()
    assert vocab[:2] == ["", "[UNK]"]  # padding, then out-of-vocabulary
    counts = Counter(w.strip(".").lower() for t in train_x for w in t.split())
    got = [counts[w] for w in vocab[2:]]
    assert got == sorted(got, reverse=True)  # by descending frequency
    x_train = np.asarray(vectorize_layer(train_x))
    assert x_train.shape == (240, SEQUENCE_LENGTH)
    first = [vocab.index(w.strip(".").lower()) for w in train_x[0].split()]
    assert x_train[0, : len(first)].tolist() == first
    assert not x_train[0, len(first) :].any()  # zero-padded

    inputs = keras.Input(shape=(None,), dtype="int64")
    x = layers.Embedding(MAX_FEATURES, EMBEDDING_DIM)(inputs)
    x = layers.Dropout(0.5)(x)
    x = layers.Conv1D(16, 3, padding="valid", activation="relu", strides=1)(x)
    x = layers.Conv1D(16, 3, padding="valid", activation="relu", strides=1)(x)
    x = layers.GlobalMaxPooling1D()(x)
    x = layers.Dense(16, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    predictions = layers.Dense(1, activation="sigmoid", name="predictions")(x)
    model = keras.Model(inputs, predictions)
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    history = model.fit(x_train, train_y, batch_size=16, epochs=20, verbose=0)
    assert history.history["accuracy"][-1] > 0.8  # one mood word decides the label
    x_test = np.asarray(vectorize_layer(test_x))
    _, accuracy = model.evaluate(x_test, test_y, verbose=0)
    assert accuracy > 0.8

    inputs = keras.Input(shape=(1,), dtype="string")
    indices = vectorize_layer(inputs)
    outputs = model(indices)
    end_to_end_model = keras.Model(inputs, outputs)
    end_to_end_model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    logs = end_to_end_model.evaluate(test_x[:, None], test_y, verbose=0, return_dict=True)
    assert logs["accuracy"] == pytest.approx(accuracy, abs=1e-6)
