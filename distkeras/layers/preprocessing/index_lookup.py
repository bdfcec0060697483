"""`IndexLookup`: the shared vocabulary machinery of `StringLookup` and `IntegerLookup`.

A vocabulary maps tokens to contiguous indices: the mask token (if any, only
in `"int"` mode) at 0, then `num_oov_indices` out-of-vocabulary slots, then the
tokens. `adapt` orders tokens as Keras does: by descending frequency, ties
broken by descending token (`order_vocabulary`, also used by
`TextVectorization`). Work happens on the host in NumPy; outputs are tensors of
the current array module (strings of an inverted `StringLookup` stay NumPy).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from distkeras.backend import current_module, to_numpy
from distkeras.backend.autodiff import Tensor
from distkeras.layers.keras_tensor import KerasTensor
from distkeras.layers.layer import Layer
from distkeras.layers.preprocessing.normalization import iter_batches

LOOKUP_OUTPUT_MODES = ("int", "one_hot", "multi_hot", "count", "tf_idf")


def order_vocabulary(counts: Counter) -> list:
    """Tokens by descending count, ties by descending token (Keras's order)."""
    if not counts:
        return []
    tokens = list(counts.keys())
    keys = np.array(tokens) if not isinstance(tokens[0], str) else np.array(tokens, dtype=str)
    freq = np.array([counts[t] for t in tokens], dtype=np.int64)
    return [tokens[i] for i in np.lexsort((keys, freq))[::-1]]


def idf_from_counts(doc_counts: Sequence[int], num_docs: int) -> np.ndarray:
    """Keras's inverse document frequency: `log(1 + num_docs / (1 + doc_count))`."""
    return np.log(1.0 + num_docs / (1.0 + np.asarray(doc_counts, dtype=np.float64)))


def encode_ids(ids: np.ndarray, mode: str, depth: int, idf: np.ndarray | None = None) -> Any:
    """Index array (-1 = dropped) to a `one_hot` / `multi_hot` / `count` / `tf_idf` array.

    `one_hot` encodes every element (a trailing axis of 1 is replaced); the
    other modes reduce the last axis (a rank-1 input is one sample).
    """
    ids = np.asarray(ids)
    if mode == "one_hot":
        if ids.ndim > 1 and ids.shape[-1] == 1:
            ids = ids[..., 0]
        return (ids[..., None] == np.arange(depth)).astype(np.int64)
    hot = ids[..., None] == np.arange(depth)
    counts = hot.sum(axis=-2).astype(np.int64)
    if mode == "multi_hot":
        return (counts > 0).astype(np.int64)
    if mode == "count":
        return counts
    weights = np.full(depth, idf.mean() if idf is not None and len(idf) else 0.0)
    weights[: len(idf)] = idf
    return (counts * weights).astype(np.float32)


class IndexLookup(Layer):
    """Base of the lookup layers: maps tokens to indices (or back, with `invert`).

    Subclasses set how raw values are checked (`_prepare`) and how out-of-vocabulary
    values pick one of several OOV slots (`_oov_bucket`).
    """

    def __init__(
        self,
        max_tokens: int | None,
        num_oov_indices: int,
        mask_token: Any,
        oov_token: Any,
        vocabulary_dtype: str,
        vocabulary: Any = None,
        idf_weights: Any = None,
        invert: bool = False,
        output_mode: str = "int",
        pad_to_max_tokens: bool = False,
        sparse: bool = False,
        **kwargs: Any,
    ):
        kwargs.pop("vocabulary_size", None)
        kwargs.pop("oov_method", None)
        kwargs.pop("salt", None)
        super().__init__(**kwargs)
        cls = type(self).__name__
        if output_mode == "binary":  # Keras's older name, still accepted
            output_mode = "multi_hot"
        if max_tokens is not None and (
            isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens <= 1
        ):
            raise ValueError(
                f"If set, `max_tokens` must be greater than 1. Received: max_tokens={max_tokens!r}"
            )
        if pad_to_max_tokens and max_tokens is None:
            raise ValueError(
                "If pad_to_max_tokens is True, must set `max_tokens`. "
                f"Received: max_tokens={max_tokens}"
            )
        if isinstance(num_oov_indices, bool) or not isinstance(num_oov_indices, int):
            raise ValueError(
                "`num_oov_indices` must be an integer. "
                f"Received: num_oov_indices={num_oov_indices!r}"
            )
        if num_oov_indices < 0:
            raise ValueError(
                "`num_oov_indices` must be greater than or equal to 0. "
                f"Received: num_oov_indices={num_oov_indices}"
            )
        if output_mode not in LOOKUP_OUTPUT_MODES:
            raise ValueError(
                f"Unknown value for `output_mode` argument of {cls}. Allowed values are: "
                f"{LOOKUP_OUTPUT_MODES}. Received: output_mode={output_mode}"
            )
        if invert and output_mode != "int":
            raise ValueError(
                "`output_mode` must be `'int'` when `invert` is true. "
                f"Received: output_mode={output_mode}"
            )
        if sparse:
            raise ValueError(
                f"Sparse outputs are not supported by {cls} (outputs are dense). "
                "Received: sparse=True"
            )
        if idf_weights is not None and output_mode != "tf_idf":
            raise ValueError(
                "`idf_weights` should only be set if `output_mode` is `'tf_idf'`. "
                f"Received: idf_weights={idf_weights} and output_mode={output_mode}"
            )
        self.max_tokens = max_tokens
        self.num_oov_indices = num_oov_indices
        self.mask_token = mask_token
        self.oov_token = oov_token
        self.vocabulary_dtype = vocabulary_dtype
        self.invert = bool(invert)
        self.output_mode = output_mode
        self.pad_to_max_tokens = bool(pad_to_max_tokens)
        self.sparse = False
        self._tokens: list = []
        self._index: dict = {}
        self._idf: np.ndarray | None = None
        self.built = True
        if vocabulary is not None:
            self.set_vocabulary(vocabulary, idf_weights)
        elif idf_weights is not None:
            raise ValueError(
                "`idf_weights` must be passed together with `vocabulary`. Received: vocabulary=None"
            )

    # ------------------------------------------------------------ hooks
    def _prepare(self, values: np.ndarray) -> np.ndarray:
        """Checks and normalizes raw input values (object array, any shape)."""
        raise NotImplementedError

    def _oov_bucket(self, value: Any) -> int:
        """Which of the `num_oov_indices` slots an unknown value falls into."""
        raise NotImplementedError

    # ------------------------------------------------------------ vocabulary
    @property
    def _has_mask(self) -> bool:
        return self.mask_token is not None and self.output_mode == "int"

    @property
    def _specials(self) -> list:
        return ([self.mask_token] if self._has_mask else []) + [
            self.oov_token
        ] * self.num_oov_indices

    def set_vocabulary(self, vocabulary: Any, idf_weights: Any = None) -> None:
        """Sets the vocabulary: a list/array of tokens or a text file of one token a line.

        Special tokens (mask, then OOV) at its head are accepted and dropped.
        With `output_mode="tf_idf"`, `idf_weights` (one per token) are required.
        """
        if isinstance(vocabulary, (str, os.PathLike)):
            if not os.path.isfile(vocabulary):
                raise ValueError(
                    f"Vocabulary file {vocabulary} does not exist. Received: "
                    f"vocabulary={vocabulary!r}"
                )
            with open(vocabulary, encoding="utf-8") as f:
                lines = [line.rstrip("\r\n") for line in f]
            vocabulary = lines[:-1] if lines and lines[-1] == "" else lines
        raw = to_numpy(vocabulary) if hasattr(vocabulary, "shape") else list(vocabulary)
        vocab = list(self._prepare(np.asarray(raw, dtype=object).reshape(-1)))
        idf = None if idf_weights is None else np.asarray(idf_weights, np.float64).reshape(-1)
        head = self._specials
        if vocab[: len(head)] == head and head:
            vocab = vocab[len(head) :]
            if idf is not None and len(idf) == len(vocab) + len(head):
                idf = idf[len(head) :]
        if len(set(vocab)) != len(vocab):
            repeated = sorted({t for t in vocab if vocab.count(t) > 1})
            raise ValueError(
                "The passed vocabulary has at least one repeated term. Please uniquify your "
                f"dataset. The repeated terms are: {repeated}"
            )
        specials = {self.oov_token} | ({self.mask_token} if self.mask_token is not None else set())
        if any(t in specials for t in vocab):
            raise ValueError(
                f"Special tokens ({self.mask_token!r}, {self.oov_token!r}) may only appear at "
                f"the start of the vocabulary. Received: vocabulary={vocab[:10]}"
            )
        size = len(vocab) + len(self._specials)
        if self.max_tokens is not None and size > self.max_tokens:
            raise ValueError(
                "Attempted to set a vocabulary larger than the maximum vocab size. Received "
                f"vocabulary size is {size}; `max_tokens` is {self.max_tokens}."
            )
        if self.output_mode == "tf_idf":
            if idf is None:
                raise ValueError(
                    "`idf_weights` must be set if output_mode is 'tf_idf'. Received: "
                    "idf_weights=None"
                )
            if len(idf) != len(vocab):
                raise ValueError(
                    "`idf_weights` must be the same length as vocabulary. Received: "
                    f"len(idf_weights)={len(idf)}, len(vocabulary)={len(vocab)}"
                )
        self._tokens = vocab
        offset = len(self._specials)
        self._index = {t: i + offset for i, t in enumerate(vocab)}
        if idf is not None:
            self._idf = np.concatenate([np.full(offset, idf.mean() if len(idf) else 0.0), idf])

    def get_vocabulary(self, include_special_tokens: bool = True) -> list:
        """The vocabulary, special tokens (mask, OOV) first unless excluded."""
        return (self._specials if include_special_tokens else []) + list(self._tokens)

    def vocabulary_size(self) -> int:
        """Number of indices, special tokens included."""
        return len(self._tokens) + len(self._specials)

    @property
    def idf_weights(self) -> np.ndarray | None:
        """The tf-idf weights, one per index (OOV slots get the mean), or None."""
        return self._idf

    def adapt(self, data: Any, batch_size: int | None = None, steps: int | None = None) -> None:
        """Builds the vocabulary (and idf weights for `"tf_idf"`) from data.

        Args:
            data: Array/list of tokens, or a PyDataset/iterable of such batches.
                For idf, every row of a rank-2 batch (or every element of a
                rank-1 batch) is one document.
            batch_size: Unused (accepted for Keras compatibility).
            steps: Number of batches to read from an iterable.
        """
        if isinstance(data, list) and data and isinstance(data[0], (list, tuple)):
            data = np.asarray(data, dtype=object)
        counts: Counter = Counter()
        doc_counts: Counter = Counter()
        num_docs = 0
        for batch in iter_batches(data, steps):
            values = self._prepare(np.asarray(batch, dtype=object))
            counts.update(values.reshape(-1).tolist())
            if self.output_mode == "tf_idf":
                rows = (
                    values.reshape(-1, 1) if values.ndim <= 1 else values.reshape(len(values), -1)
                )
                for row in rows:
                    doc_counts.update(set(row.tolist()))
                num_docs += len(rows)
        counts.pop(self.oov_token, None)
        if self.mask_token is not None:
            counts.pop(self.mask_token, None)
        vocab = order_vocabulary(counts)
        if self.max_tokens is not None:
            vocab = vocab[: self.max_tokens - len(self._specials)]
        idf = None
        if self.output_mode == "tf_idf":
            idf = idf_from_counts([doc_counts[t] for t in vocab], num_docs)
        self.set_vocabulary(vocab, idf)

    # ------------------------------------------------------------ call
    def __call__(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(inputs, KerasTensor):
            return super().__call__(inputs, *args, **kwargs)
        return self.call(inputs)

    def _lookup(self, values: np.ndarray) -> np.ndarray:
        drop = -1 if self.mask_token is not None and not self._has_mask else None
        oov_start = 1 if self._has_mask else 0
        flat = values.reshape(-1)
        out = np.empty(flat.shape, dtype=np.int64)
        for i, v in enumerate(flat.tolist()):
            idx = self._index.get(v)
            if idx is None:
                if self.mask_token is not None and v == self.mask_token:
                    idx = 0 if drop is None else drop
                elif self.num_oov_indices == 0:
                    raise ValueError(
                        f"When `num_oov_indices=0` all inputs should be in vocabulary. "
                        f"Received: inputs containing {v!r}, not in the vocabulary"
                    )
                else:
                    idx = oov_start + (self._oov_bucket(v) if self.num_oov_indices > 1 else 0)
            out[i] = idx
        return out.reshape(values.shape)

    def _invert(self, ids: np.ndarray) -> np.ndarray:
        vocab = self.get_vocabulary()
        flat = [vocab[i] if 0 <= i < len(vocab) else self.oov_token for i in ids.reshape(-1)]
        return np.asarray(flat, dtype=object).reshape(ids.shape)

    def call(self, inputs: Any) -> Any:
        if isinstance(inputs, Tensor):
            inputs = inputs.data
        single = np.ndim(inputs) == 0 if not isinstance(inputs, (str, bytes)) else True
        arr = np.asarray(to_numpy(inputs) if not single else [inputs], dtype=object)
        xp = current_module()
        if self.invert:
            if any(not isinstance(v, (int, np.integer)) for v in arr.reshape(-1).tolist()):
                raise ValueError(
                    f"Layer {self.name!r} with invert=True expects integer indices. "
                    f"Received: inputs of dtype {np.asarray(inputs).dtype}"
                )
            out = self._prepare(self._invert(arr.astype(np.int64)))
            return self._wrap_inverted(out[0] if single else out)
        ids = self._lookup(self._prepare(arr))
        if self.output_mode == "int":
            out = ids
        else:
            depth = self.max_tokens if self.pad_to_max_tokens else self.vocabulary_size()
            out = encode_ids(ids, self.output_mode, depth, self._idf)
        # A scalar input is a batch of one, as in Keras; only "int" gives a scalar back.
        return Tensor(xp.asarray(out[0] if single and self.output_mode == "int" else out))

    def _wrap_inverted(self, out: Any) -> Any:
        return out

    def compute_output_shape(self, input_shape: Any) -> tuple:
        shape = tuple(input_shape)
        if self.output_mode == "int":
            return shape
        depth = self.max_tokens if self.pad_to_max_tokens else self.vocabulary_size()
        if self.output_mode == "one_hot":
            if len(shape) > 1 and shape[-1] == 1:
                shape = shape[:-1]
            return (*shape, depth)
        return (*shape[:-1], depth) if len(shape) > 1 else (depth,)

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(
            {
                "invert": self.invert,
                "max_tokens": self.max_tokens,
                "num_oov_indices": self.num_oov_indices,
                "oov_token": self.oov_token,
                "mask_token": self.mask_token,
                "output_mode": self.output_mode,
                "sparse": self.sparse,
                "pad_to_max_tokens": self.pad_to_max_tokens,
                "vocabulary_dtype": self.vocabulary_dtype,
                # The (adapted) vocabulary travels with the config, as for
                # TextVectorization, so a saved and reloaded layer maps the same way.
                "vocabulary": list(self._tokens) if self._tokens else None,
                "idf_weights": (
                    None if self._idf is None else self._idf[len(self._specials) :].tolist()
                ),
                "vocabulary_size": self.vocabulary_size(),
            }
        )
        return cfg
