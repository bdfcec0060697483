"""Keras 2.15 text utilities: `Tokenizer`, `text_to_word_sequence`, `one_hot`, `hashing_trick`.

Differences from Keras 2.15, on purpose: `one_hot` and `hashing_trick` with
`hash_function=None` use MD5 (stable across processes and runs) instead of
Python's salted `hash()`, so every rank of a data-parallel job hashes a word
to the same index; non-string texts raise a clear `ValueError`.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

DEFAULT_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'
MATRIX_MODES = ("binary", "count", "tfidf", "freq")


def _check_text(text: Any, name: str = "input_text") -> str:
    if not isinstance(text, str):
        raise ValueError(
            f"Expected a string for `{name}`. Received: {name}={text!r} "
            f"of type {type(text).__name__}"
        )
    return text


def text_to_word_sequence(
    input_text: str, filters: str = DEFAULT_FILTERS, lower: bool = True, split: str = " "
) -> list[str]:
    """Splits a text into words: lowercase, drop the `filters` characters, split on `split`.

    Args:
        input_text: The text.
        filters: Characters replaced by `split` before splitting.
        lower: Lowercase first.
        split: The word separator.
    """
    _check_text(input_text)
    if lower:
        input_text = input_text.lower()
    translate = {c: split for c in filters}
    seq = input_text.translate(str.maketrans(translate)).split(split)
    return [w for w in seq if w]


def md5_hash(word: str) -> int:
    """A hash of `word` that is the same in every process: its MD5 digest as an integer."""
    return int(hashlib.md5(word.encode("utf-8")).hexdigest(), 16)


def hashing_trick(
    text: str,
    n: int,
    hash_function: Callable[[str], int] | str | None = None,
    filters: str = DEFAULT_FILTERS,
    lower: bool = True,
    split: str = " ",
    analyzer: Callable[[str], list[str]] | None = None,
) -> list[int]:
    """Maps each word of `text` to `hash(word) % (n - 1) + 1` (0 is reserved).

    Args:
        text: The text.
        n: Dimension of the hashing space (indices are in [1, n)).
        hash_function: Callable str -> int, or 'md5'. None means MD5 (stable;
            Keras 2 used Python's salted `hash`).
        filters, lower, split: As `text_to_word_sequence`.
        analyzer: Optional callable text -> list of words (replaces the split).
    """
    _check_text(text, "text")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"`n` must be an integer >= 2. Received: n={n!r}")
    if hash_function is None or hash_function == "md5":
        hash_function = md5_hash
    elif not callable(hash_function):
        raise ValueError(
            "`hash_function` must be None, 'md5' or a callable. "
            f"Received: hash_function={hash_function!r}"
        )
    if analyzer is None:
        seq = text_to_word_sequence(text, filters=filters, lower=lower, split=split)
    else:
        seq = analyzer(text)
    return [(hash_function(w) % (n - 1) + 1) for w in seq]


def one_hot(
    input_text: str,
    n: int,
    filters: str = DEFAULT_FILTERS,
    lower: bool = True,
    split: str = " ",
    analyzer: Callable[[str], list[str]] | None = None,
) -> list[int]:
    """Encodes a text as word indices in [1, n) by hashing (MD5; see `hashing_trick`)."""
    _check_text(input_text)
    return hashing_trick(
        input_text,
        n,
        hash_function=md5_hash,
        filters=filters,
        lower=lower,
        split=split,
        analyzer=analyzer,
    )


class Tokenizer:
    """Vectorizes texts into word-index sequences or matrices (Keras 2.15's Tokenizer).

    Word indices start at 1 (with `oov_token` taking index 1) in order of
    descending count, ties kept in order of first appearance; 0 is never used.

    Args:
        num_words: Keep only the `num_words - 1` most frequent words when
            converting (None: all).
        filters: Characters removed from the texts.
        lower: Lowercase the texts.
        split: Word separator.
        char_level: Treat every character as a token.
        oov_token: Token standing for out-of-vocabulary words in
            `texts_to_sequences`.
        analyzer: Optional callable text -> tokens.
        document_count: Starting document count (set when loading).
    """

    def __init__(
        self,
        num_words: int | None = None,
        filters: str = DEFAULT_FILTERS,
        lower: bool = True,
        split: str = " ",
        char_level: bool = False,
        oov_token: str | None = None,
        analyzer: Callable[[str], list[str]] | None = None,
        document_count: int = 0,
        **kwargs: Any,
    ):
        if "nb_words" in kwargs:
            num_words = kwargs.pop("nb_words")
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments: {kwargs}")
        if num_words is not None and (
            isinstance(num_words, bool)
            or not isinstance(num_words, (int, np.integer))
            or num_words < 1
        ):
            raise ValueError(
                f"`num_words` must be a positive integer or None. Received: num_words={num_words!r}"
            )
        self.word_counts: OrderedDict[str, int] = OrderedDict()
        self.word_docs: defaultdict[str, int] = defaultdict(int)
        self.filters = filters
        self.split = split
        self.lower = lower
        self.num_words = num_words
        self.document_count = document_count
        self.char_level = char_level
        self.oov_token = oov_token
        self.index_docs: defaultdict[int, int] = defaultdict(int)
        self.word_index: dict[str, int] = {}
        self.index_word: dict[int, str] = {}
        self.analyzer = analyzer

    def _tokens(self, text: Any) -> list[str]:
        if isinstance(text, list):
            for t in text:
                _check_text(t, "texts")
            return [t.lower() for t in text] if self.lower else list(text)
        _check_text(text, "texts")
        if self.char_level:
            return list(text.lower() if self.lower else text)
        if self.analyzer is None:
            return text_to_word_sequence(
                text, filters=self.filters, lower=self.lower, split=self.split
            )
        return list(self.analyzer(text))

    @staticmethod
    def _check_texts(texts: Any) -> Iterable:
        if isinstance(texts, str):
            raise ValueError(
                f"Expected a list of texts, not a single string. Received: texts={texts[:40]!r}"
            )
        return texts

    def fit_on_texts(self, texts: Iterable[str | list[str]]) -> None:
        """Counts words (and the documents they appear in) and builds `word_index`."""
        for text in self._check_texts(texts):
            self.document_count += 1
            seq = self._tokens(text)
            for w in seq:
                self.word_counts[w] = self.word_counts.get(w, 0) + 1
            for w in set(seq):
                self.word_docs[w] += 1
        wcounts = sorted(self.word_counts.items(), key=lambda x: x[1], reverse=True)
        sorted_voc = [] if self.oov_token is None else [self.oov_token]
        sorted_voc.extend(w for w, _ in wcounts)
        self.word_index = dict(zip(sorted_voc, range(1, len(sorted_voc) + 1)))
        self.index_word = {c: w for w, c in self.word_index.items()}
        for w, c in self.word_docs.items():
            self.index_docs[self.word_index[w]] = c

    def fit_on_sequences(self, sequences: Iterable[Sequence[int]]) -> None:
        """Counts the documents each index appears in (needed for 'tfidf' matrices)."""
        for seq in sequences:
            self.document_count += 1
            for i in set(seq):
                self.index_docs[int(i)] += 1

    def texts_to_sequences(self, texts: Iterable[str | list[str]]) -> list[list[int]]:
        """Converts each text to its list of word indices."""
        return list(self.texts_to_sequences_generator(texts))

    def texts_to_sequences_generator(self, texts: Iterable) -> Iterator[list[int]]:
        """Yields the word-index sequence of each text."""
        num_words = self.num_words
        oov_index = self.word_index.get(self.oov_token) if self.oov_token is not None else None
        for text in self._check_texts(texts):
            vect = []
            for w in self._tokens(text):
                i = self.word_index.get(w)
                if i is not None:
                    if num_words and i >= num_words:
                        if oov_index is not None:
                            vect.append(oov_index)
                    else:
                        vect.append(i)
                elif oov_index is not None:
                    vect.append(oov_index)
            yield vect

    def sequences_to_texts(self, sequences: Iterable[Sequence[int]]) -> list[str]:
        """Converts index sequences back to space-joined texts."""
        return list(self.sequences_to_texts_generator(sequences))

    def sequences_to_texts_generator(self, sequences: Iterable) -> Iterator[str]:
        """Yields the text of each index sequence."""
        num_words = self.num_words
        oov_index = self.word_index.get(self.oov_token) if self.oov_token is not None else None
        for seq in sequences:
            vect = []
            for num in seq:
                word = self.index_word.get(int(num))
                if word is not None:
                    if num_words and num >= num_words:
                        if oov_index is not None:
                            vect.append(self.index_word[oov_index])
                    else:
                        vect.append(word)
                elif oov_index is not None:
                    vect.append(self.index_word[oov_index])
            yield " ".join(vect)

    def texts_to_matrix(self, texts: Iterable, mode: str = "binary") -> np.ndarray:
        """(len(texts), num_words) matrix; mode 'binary', 'count', 'tfidf' or 'freq'."""
        return self.sequences_to_matrix(self.texts_to_sequences(texts), mode=mode)

    def sequences_to_matrix(self, sequences: Sequence[Sequence[int]], mode: str = "binary"):
        """(len(sequences), num_words) matrix of the sequences.

        'binary': 1 where the index occurs; 'count': occurrences; 'freq':
        occurrences / sequence length; 'tfidf': `(1 + log(count)) *
        log(1 + document_count / (1 + docs containing the index))`.
        """
        if mode not in MATRIX_MODES:
            raise ValueError(
                f"Unknown vectorization mode. Expected one of {MATRIX_MODES}. "
                f"Received: mode={mode!r}"
            )
        if not self.num_words:
            if not self.word_index:
                raise ValueError(
                    "Specify a dimension (`num_words` argument), or fit on some text data first. "
                    "Received: num_words=None and an empty word_index"
                )
            num_words = len(self.word_index) + 1
        else:
            num_words = self.num_words
        if mode == "tfidf" and not self.document_count:
            raise ValueError(
                "Fit the Tokenizer on some data before using tfidf mode. "
                f"Received: document_count={self.document_count}"
            )
        x = np.zeros((len(sequences), num_words))
        for i, seq in enumerate(sequences):
            if not len(seq):
                continue
            counts: dict[int, int] = defaultdict(int)
            for j in seq:
                if j >= num_words:
                    continue
                counts[int(j)] += 1
            for j, c in counts.items():
                if mode == "count":
                    x[i][j] = c
                elif mode == "freq":
                    x[i][j] = c / len(seq)
                elif mode == "binary":
                    x[i][j] = 1
                else:
                    tf = 1 + np.log(c)
                    idf = np.log(1 + self.document_count / (1 + self.index_docs.get(j, 0)))
                    x[i][j] = tf * idf
        return x

    def get_config(self) -> dict:
        """The tokenizer's configuration and vocabulary (JSON-serializable)."""
        return {
            "num_words": self.num_words,
            "filters": self.filters,
            "lower": self.lower,
            "split": self.split,
            "char_level": self.char_level,
            "oov_token": self.oov_token,
            "document_count": self.document_count,
            "word_counts": json.dumps(self.word_counts),
            "word_docs": json.dumps(self.word_docs),
            "index_docs": json.dumps(self.index_docs),
            "index_word": json.dumps(self.index_word),
            "word_index": json.dumps(self.word_index),
        }

    def to_json(self, **kwargs: Any) -> str:
        """JSON string of the tokenizer (load with `tokenizer_from_json`)."""
        return json.dumps(
            {"class_name": self.__class__.__name__, "config": self.get_config()}, **kwargs
        )


def tokenizer_from_json(json_string: str) -> Tokenizer:
    """Rebuilds a `Tokenizer` from `Tokenizer.to_json()` output."""
    try:
        tokenizer_config = json.loads(json_string)
        config = dict(tokenizer_config["config"])
    except (TypeError, ValueError, KeyError) as e:
        raise ValueError(
            f"Expected the JSON written by Tokenizer.to_json(). Received: {str(json_string)[:60]!r}"
        ) from e
    word_counts = json.loads(config.pop("word_counts"))
    word_docs = json.loads(config.pop("word_docs"))
    index_docs = {int(k): v for k, v in json.loads(config.pop("index_docs")).items()}
    index_word = {int(k): v for k, v in json.loads(config.pop("index_word")).items()}
    word_index = json.loads(config.pop("word_index"))
    tokenizer = Tokenizer(**config)
    tokenizer.word_counts = OrderedDict(word_counts)
    tokenizer.word_docs = defaultdict(int, word_docs)
    tokenizer.index_docs = defaultdict(int, index_docs)
    tokenizer.word_index = word_index
    tokenizer.index_word = index_word
    return tokenizer
