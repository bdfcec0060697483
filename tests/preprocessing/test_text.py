"""Tokenizer, text_to_word_sequence, one_hot and hashing_trick against hand-worked values."""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from distkeras.preprocessing import text

TEXTS = ["The cat sat on the mat.", "The dog ate my homework!", "cat and dog"]
# Counts: the 3, cat 2, dog 2, then count-1 words in order of first appearance.
WORD_INDEX = {
    "the": 1,
    "cat": 2,
    "dog": 3,
    "sat": 4,
    "on": 5,
    "mat": 6,
    "ate": 7,
    "my": 8,
    "homework": 9,
    "and": 10,
}
ROOT = Path(__file__).resolve().parents[2]


def fitted(**kwargs) -> text.Tokenizer:
    tok = text.Tokenizer(**kwargs)
    tok.fit_on_texts(TEXTS)
    return tok


def test_text_to_word_sequence():
    assert text.text_to_word_sequence("Hello, World! foo-bar  baz") == [
        "hello",
        "world",
        "foo",
        "bar",
        "baz",
    ]
    assert text.text_to_word_sequence("A;B", filters="", lower=False, split=";") == ["A", "B"]


def test_tokenizer_counts_and_index():
    tok = fitted()
    assert tok.word_index == WORD_INDEX
    assert tok.index_word[3] == "dog"
    assert tok.word_counts["the"] == 3 and tok.word_counts["cat"] == 2
    assert tok.word_docs["the"] == 2 and tok.word_docs["mat"] == 1
    assert tok.index_docs[1] == 2 and tok.document_count == 3


def test_texts_to_sequences_num_words_and_oov():
    assert fitted().texts_to_sequences(["the cat ate the fish"]) == [[1, 2, 7, 1]]
    assert fitted(num_words=4).texts_to_sequences(["the cat ate the fish"]) == [[1, 2, 1]]
    oov = fitted(oov_token="<OOV>")
    assert oov.word_index["<OOV>"] == 1 and oov.word_index["the"] == 2
    assert oov.texts_to_sequences(["the cat ate the fish"]) == [[2, 3, 8, 2, 1]]
    assert fitted(oov_token="<OOV>", num_words=4).texts_to_sequences(["the cat ate"]) == [[2, 3, 1]]
    assert fitted().sequences_to_texts([[1, 2, 7, 1, 99]]) == ["the cat ate the"]
    assert oov.sequences_to_texts([[2, 99]]) == ["the <OOV>"]


def test_char_level_and_list_inputs():
    tok = text.Tokenizer(char_level=True)
    tok.fit_on_texts(["abca"])
    assert tok.word_index == {"a": 1, "b": 2, "c": 3}
    words = text.Tokenizer()
    words.fit_on_texts([["X", "y", "y"]])  # pre-split texts are lowercased only
    assert words.word_index == {"y": 1, "x": 2}


def test_texts_to_matrix_modes():
    tok = fitted()
    docs = ["the cat the", "dog"]
    binary = tok.texts_to_matrix(docs, mode="binary")
    assert binary.shape == (2, 11)
    expected = np.zeros((2, 11))
    expected[0, [1, 2]] = 1
    expected[1, 3] = 1
    np.testing.assert_array_equal(binary, expected)
    count = tok.texts_to_matrix(docs, mode="count")
    assert count[0, 1] == 2 and count[0, 2] == 1 and count.sum() == 4
    freq = tok.texts_to_matrix(docs, mode="freq")
    np.testing.assert_allclose(freq[0, [1, 2]], [2 / 3, 1 / 3])
    tfidf = tok.texts_to_matrix(docs, mode="tfidf")
    # idf = log(1 + 3 / (1 + docs containing the word)); every word here is in 2 docs.
    idf = math.log(1 + 3 / 3)
    np.testing.assert_allclose(tfidf[0, 1], (1 + math.log(2)) * idf)
    np.testing.assert_allclose(tfidf[0, 2], idf)
    np.testing.assert_allclose(tfidf[1, 3], idf)
    assert fitted(num_words=3).texts_to_matrix(docs, mode="count").tolist() == [
        [0, 2, 1],
        [0, 0, 0],
    ]


def test_fit_on_sequences_feeds_tfidf():
    tok = text.Tokenizer(num_words=4)
    tok.fit_on_sequences([[1, 2], [1]])
    assert tok.document_count == 2 and tok.index_docs[1] == 2 and tok.index_docs[2] == 1
    m = tok.sequences_to_matrix([[1, 3]], mode="tfidf")
    np.testing.assert_allclose(m[0], [0, math.log(1 + 2 / 3), 0, math.log(1 + 2 / 1)])


def test_to_json_round_trip():
    tok = fitted(oov_token="<OOV>", num_words=8)
    again = text.tokenizer_from_json(tok.to_json())
    assert again.word_index == tok.word_index and again.index_word == tok.index_word
    assert again.get_config() == tok.get_config()
    np.testing.assert_array_equal(
        again.texts_to_matrix(TEXTS, "tfidf"), tok.texts_to_matrix(TEXTS, "tfidf")
    )
    with pytest.raises(ValueError, match="Tokenizer.to_json"):
        text.tokenizer_from_json('{"nope": 1}')


def test_hashing_trick_is_md5_based():
    n = 17
    words = text.text_to_word_sequence(TEXTS[0])
    expected = [int(hashlib.md5(w.encode()).hexdigest(), 16) % (n - 1) + 1 for w in words]
    assert text.hashing_trick(TEXTS[0], n) == expected
    assert text.hashing_trick(TEXTS[0], n, hash_function="md5") == expected
    assert text.one_hot(TEXTS[0], n) == expected
    assert text.hashing_trick("a b", 5, hash_function=len) == [2, 2]
    assert all(1 <= i < n for i in text.one_hot(" ".join(TEXTS), n))


def test_one_hot_is_the_same_in_every_process():
    code = "from distkeras.preprocessing.text import one_hot; print(one_hot('the cat sat', 1000))"
    outs = set()
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed, PYTHONPATH=str(ROOT))
        proc = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=True,
        )
        outs.add(proc.stdout.strip())
    assert outs == {str(text.one_hot("the cat sat", 1000))}


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: text.Tokenizer().fit_on_texts(["ok", 3]), "Received: texts=3"),
        (lambda: text.Tokenizer().fit_on_texts("just one string"), "single string"),
        (lambda: fitted().texts_to_sequences([None]), "Received: texts=None"),
        (lambda: text.text_to_word_sequence(b"bytes"), "input_text=b'bytes'"),
        (lambda: text.one_hot(12, 5), "input_text=12"),
        (lambda: text.hashing_trick("a", 1), "Received: n=1"),
        (lambda: text.hashing_trick("a", 5, hash_function="sha"), "hash_function='sha'"),
        (lambda: fitted().texts_to_matrix(["a"], mode="onehot"), "mode='onehot'"),
        (lambda: text.Tokenizer().texts_to_matrix(["a"]), "num_words"),
        (lambda: text.Tokenizer(num_words=3).sequences_to_matrix([[1]], "tfidf"), "tfidf"),
        (lambda: text.Tokenizer(num_words=0), "num_words=0"),
    ],
)
def test_bad_input_raises_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
