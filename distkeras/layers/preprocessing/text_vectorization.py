"""`TextVectorization`: strings to token indices or bag-of-words vectors, with `adapt`.

Text processing happens on the host (Python strings); the output is a tensor
of the current array module. The vocabulary is ordered as Keras orders it: by
descending frequency, ties broken by descending token (`order_vocabulary`,
shared with the lookup layers).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from distkeras.backend import current_module, floatx, to_numpy
from distkeras.backend.autodiff import Tensor
from distkeras.layers.keras_tensor import KerasTensor
from distkeras.layers.layer import Layer
from distkeras.layers.preprocessing.index_lookup import (
    encode_ids,
    idf_from_counts,
    order_vocabulary,
)
from distkeras.layers.preprocessing.normalization import iter_batches

DEFAULT_STRIP_REGEX = r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']'
STANDARDIZE = (None, "lower_and_strip_punctuation", "lower", "strip_punctuation")
SPLIT = (None, "whitespace", "character")
OUTPUT_MODES = ("int", "multi_hot", "count", "tf_idf")
MASK_TOKEN, OOV_TOKEN = "", "[UNK]"


def standardize_text(text: str, standardize: Any) -> str:
    """Applies a TextVectorization `standardize` option to one string."""
    if callable(standardize):
        return standardize(text)
    if standardize in ("lower", "lower_and_strip_punctuation"):
        text = text.lower()
    if standardize in ("strip_punctuation", "lower_and_strip_punctuation"):
        text = re.sub(DEFAULT_STRIP_REGEX, "", text)
    return text


def split_text(text: str, split: Any) -> list[str]:
    """Applies a TextVectorization `split` option to one string."""
    if callable(split):
        return list(split(text))
    if split == "whitespace":
        return text.split()
    if split == "character":
        return list(text)
    return [text]


def make_ngrams(tokens: list[str], widths: Sequence[int]) -> list[str]:
    """All n-grams of the given widths joined by spaces, width by width."""
    out: list[str] = []
    for n in widths:
        out.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return out


def _check_strings(values: Sequence[Any], layer_name: str) -> list[str]:
    out = []
    for v in values:
        if isinstance(v, bytes):
            v = v.decode("utf-8")
        if not isinstance(v, str):
            raise ValueError(
                f"Layer {layer_name!r} expects string inputs. "
                f"Received: inputs containing {v!r} of type {type(v).__name__}"
            )
        out.append(v)
    return out


class TextVectorization(Layer):
    """Maps strings to token index sequences or to multi-hot/count/tf-idf vectors.

    Args:
        max_tokens: Vocabulary size limit, special tokens included.
        standardize: None, 'lower_and_strip_punctuation' (default), 'lower',
            'strip_punctuation' or a callable str -> str.
        split: None, 'whitespace' (default), 'character' or a callable.
        ngrams: None, an int n (n-grams of widths 1..n) or a tuple of widths.
        output_mode: 'int' (default), 'multi_hot', 'count' or 'tf_idf'.
        output_sequence_length: With 'int', pad (with 0) or truncate every
            sequence to this length, at the end.
        pad_to_max_tokens: With the bag modes, make the output width `max_tokens`.
        vocabulary: Optional list of tokens (instead of `adapt`).
        idf_weights: Optional idf weights matching `vocabulary` ('tf_idf').
        sparse, ragged, encoding: Accepted for Keras compatibility (outputs are dense).

    Input shape:
        A list/array of strings `(batch,)` or `(batch, 1)`, or a single string.
    """

    def __init__(
        self,
        max_tokens: int | None = None,
        standardize: str | Callable | None = "lower_and_strip_punctuation",
        split: str | Callable | None = "whitespace",
        ngrams: int | tuple | None = None,
        output_mode: str = "int",
        output_sequence_length: int | None = None,
        pad_to_max_tokens: bool = False,
        vocabulary: Sequence[str] | None = None,
        idf_weights: Any = None,
        sparse: bool = False,
        ragged: bool = False,
        encoding: str = "utf-8",
        **kwargs: Any,
    ):
        kwargs.pop("vocabulary_size", None)
        super().__init__(**kwargs)
        if max_tokens is not None and (
            isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens <= 1
        ):
            raise ValueError(
                f"If set, `max_tokens` must be greater than 1. Received: max_tokens={max_tokens!r}"
            )
        if not callable(standardize) and standardize not in STANDARDIZE:
            raise ValueError(
                f"Invalid value for argument `standardize`. Expected one of {STANDARDIZE} or a "
                f"callable. Received: standardize={standardize!r}"
            )
        if not callable(split) and split not in SPLIT:
            raise ValueError(
                f"Invalid value for argument `split`. Expected one of {SPLIT} or a callable. "
                f"Received: split={split!r}"
            )
        if output_mode not in OUTPUT_MODES:
            raise ValueError(
                f"Invalid value for argument `output_mode`. Expected one of {OUTPUT_MODES}. "
                f"Received: output_mode={output_mode!r}"
            )
        if ngrams is not None and not (
            (isinstance(ngrams, int) and ngrams > 0)
            or (isinstance(ngrams, (tuple, list)) and all(isinstance(n, int) for n in ngrams))
        ):
            raise ValueError(
                "`ngrams` must be None, an integer, or a tuple of integers. "
                f"Received: ngrams={ngrams!r}"
            )
        if output_sequence_length is not None:
            if output_mode != "int":
                raise ValueError(
                    "`output_sequence_length` must not be set if `output_mode` is not 'int'. "
                    f"Received: output_sequence_length={output_sequence_length}"
                )
            if not isinstance(output_sequence_length, int) or output_sequence_length <= 0:
                raise ValueError(
                    "`output_sequence_length` must be a positive integer. "
                    f"Received: output_sequence_length={output_sequence_length!r}"
                )
        self.max_tokens = max_tokens
        self.standardize = standardize
        self.split = split
        self.ngrams = list(ngrams) if isinstance(ngrams, (tuple, list)) else ngrams
        self.output_mode = output_mode
        self.output_sequence_length = output_sequence_length
        self.pad_to_max_tokens = bool(pad_to_max_tokens)
        self.sparse, self.ragged, self.encoding = sparse, ragged, encoding
        self._tokens: list[str] = []
        self._index: dict[str, int] = {}
        self._idf: np.ndarray | None = None
        self.built = True
        if vocabulary is not None:
            self.set_vocabulary(vocabulary, idf_weights)
        elif idf_weights is not None:
            raise ValueError(
                "`idf_weights` must be passed together with `vocabulary`. "
                f"Received: idf_weights of length {len(idf_weights)}, vocabulary=None"
            )

    # ------------------------------------------------------------ vocabulary
    @property
    def _specials(self) -> list[str]:
        return [MASK_TOKEN, OOV_TOKEN] if self.output_mode == "int" else [OOV_TOKEN]

    @property
    def _oov_index(self) -> int:
        return len(self._specials) - 1

    def tokenize(self, text: str) -> list[str]:
        """Standardizes, splits and n-grams one string."""
        tokens = split_text(standardize_text(text, self.standardize), self.split)
        if self.ngrams is not None:
            widths = range(1, self.ngrams + 1) if isinstance(self.ngrams, int) else self.ngrams
            tokens = make_ngrams(tokens, widths)
        return tokens

    def set_vocabulary(self, vocabulary: Sequence[str], idf_weights: Any = None) -> None:
        """Sets the vocabulary (special tokens at its head are accepted and dropped)."""
        vocab = [str(t) for t in vocabulary]
        specials = self._specials
        if vocab[: len(specials)] == specials:
            vocab = vocab[len(specials) :]
        elif vocab[:1] == [OOV_TOKEN]:
            vocab = vocab[1:]
        if len(set(vocab)) != len(vocab):
            repeated = sorted({t for t in vocab if vocab.count(t) > 1})
            raise ValueError(
                f"The passed vocabulary has at least one repeated term. Received: {repeated}"
            )
        if any(t in specials for t in vocab):
            raise ValueError(
                "Special tokens ('' and '[UNK]') may only appear at the start of the "
                f"vocabulary. Received: vocabulary={list(vocabulary)[:10]}..."
            )
        if self.max_tokens is not None and len(vocab) + len(specials) > self.max_tokens:
            raise ValueError(
                "Attempted to set a vocabulary larger than the maximum vocab size. Received "
                f"vocabulary size is {len(vocab) + len(specials)}; "
                f"`max_tokens` is {self.max_tokens}."
            )
        if self.output_mode == "tf_idf":
            if idf_weights is None:
                raise ValueError(
                    "`idf_weights` must be set if output_mode is 'tf_idf' and a vocabulary is "
                    "passed. Received: idf_weights=None"
                )
            idf = np.asarray(idf_weights, dtype=np.float64).reshape(-1)
            if len(idf) == len(vocab) + 1:  # includes the OOV weight
                self._idf = idf
            elif len(idf) == len(vocab):
                self._idf = np.concatenate([[idf.mean() if len(idf) else 0.0], idf])
            else:
                raise ValueError(
                    "`idf_weights` must have the same length as the vocabulary. Received: "
                    f"len(idf_weights)={len(idf)}, len(vocabulary)={len(vocab)}"
                )
        elif idf_weights is not None:
            raise ValueError(
                "`idf_weights` should only be set if output_mode is 'tf_idf'. "
                f"Received: output_mode={self.output_mode!r}"
            )
        self._tokens = vocab
        offset = len(specials)
        self._index = {t: i + offset for i, t in enumerate(vocab)}

    def adapt(self, data: Any, batch_size: int | None = None, steps: int | None = None) -> None:
        """Builds the vocabulary (and idf weights) from strings.

        Args:
            data: List/array of strings, or a PyDataset/iterable of such batches.
            batch_size: Unused (accepted for Keras compatibility).
            steps: Number of batches to read from an iterable.
        """
        if isinstance(data, str):
            raise ValueError(
                "`adapt` expects a batch of strings, not a single string. "
                f"Received: data={data[:50]!r}"
            )
        counts: Counter = Counter()
        doc_counts: Counter = Counter()
        num_docs = 0
        for batch in iter_batches(data, steps):
            for text in _check_strings(np.asarray(batch, dtype=object).reshape(-1), self.name):
                tokens = self.tokenize(text)
                counts.update(tokens)
                doc_counts.update(set(tokens))
                num_docs += 1
        for special in self._specials:
            counts.pop(special, None)
        vocab = order_vocabulary(counts)
        if self.max_tokens is not None:
            vocab = vocab[: self.max_tokens - len(self._specials)]
        idf = None
        if self.output_mode == "tf_idf":
            idf = idf_from_counts([doc_counts[t] for t in vocab], num_docs)
        self.set_vocabulary(vocab, idf)

    def get_vocabulary(self, include_special_tokens: bool = True) -> list[str]:
        """The vocabulary, special tokens first unless excluded."""
        return (self._specials if include_special_tokens else []) + list(self._tokens)

    def vocabulary_size(self) -> int:
        """Number of tokens including the special ones."""
        return len(self._tokens) + len(self._specials)

    # ------------------------------------------------------------ call
    def __call__(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(inputs, KerasTensor):
            return super().__call__(inputs, *args, **kwargs)
        return self.call(inputs)

    def call(self, inputs: Any) -> Tensor:
        single = isinstance(inputs, (str, bytes))
        if isinstance(inputs, Tensor):
            inputs = inputs.data
        arr = np.asarray([inputs] if single else to_numpy(inputs), dtype=object)
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 1:
            raise ValueError(
                f"Layer {self.name!r} expects a batch of strings of shape (batch,) or "
                f"(batch, 1). Received: inputs.shape={arr.shape}"
            )
        texts = _check_strings(arr, self.name)
        ids = [[self._index.get(t, self._oov_index) for t in self.tokenize(s)] for s in texts]
        out = self._ids_to_output(ids)
        xp = current_module()
        result = Tensor(xp.asarray(out))
        return Tensor(result.data[0]) if single else result

    def _ids_to_output(self, ids: list[list[int]]) -> np.ndarray:
        n = len(ids)
        if self.output_mode == "int":
            length = self.output_sequence_length
            if length is None:
                length = max((len(s) for s in ids), default=0)
            out = np.zeros((n, length), dtype=np.int64)
            for i, s in enumerate(ids):
                s = s[:length]
                out[i, : len(s)] = s
            return out
        width = self.vocabulary_size()
        if self.pad_to_max_tokens and self.max_tokens is not None:
            width = self.max_tokens
        if self.output_mode == "tf_idf" and self._idf is None:
            raise ValueError(
                "The 'tf_idf' mode needs idf weights: call `adapt` or pass `vocabulary` and "
                "`idf_weights`. Received: no idf weights"
            )
        padded = np.full((n, max((len(s) for s in ids), default=0)), -1, dtype=np.int64)
        for i, s in enumerate(ids):
            padded[i, : len(s)] = s
        return encode_ids(padded, self.output_mode, width, self._idf).astype(floatx())

    def compute_output_shape(self, input_shape: Any) -> tuple:
        batch = input_shape[0] if len(input_shape) else None
        if self.output_mode == "int":
            return (batch, self.output_sequence_length)
        width = self.vocabulary_size()
        if self.pad_to_max_tokens and self.max_tokens is not None:
            width = self.max_tokens
        return (batch, width)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(
            {
                "max_tokens": self.max_tokens,
                "standardize": self.standardize,
                "split": self.split,
                "ngrams": self.ngrams,
                "output_mode": self.output_mode,
                "output_sequence_length": self.output_sequence_length,
                "pad_to_max_tokens": self.pad_to_max_tokens,
                "sparse": self.sparse,
                "ragged": self.ragged,
                "encoding": self.encoding,
                # The adapted vocabulary travels with the config, so a rebuilt
                # layer maps text the same way.
                "vocabulary": self.get_vocabulary() if self._tokens else None,
                "idf_weights": None if self._idf is None else self._idf.tolist(),
                "vocabulary_size": self.vocabulary_size(),
            }
        )
        return cfg
