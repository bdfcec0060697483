"""`StringLookup` and `IntegerLookup`: vocabulary lookups on `IndexLookup`."""

from __future__ import annotations

from typing import Any

import numpy as np

from distkeras.backend import current_module
from distkeras.backend.autodiff import Tensor
from distkeras.layers.preprocessing.index_lookup import IndexLookup
from distkeras.layers.preprocessing.string_hash import fingerprint64


class StringLookup(IndexLookup):
    """Maps strings to integer indices from a vocabulary (or back, with `invert`).

    Args:
        max_tokens: Vocabulary size limit, special tokens included.
        num_oov_indices: Number of out-of-vocabulary slots (default 1); with
            several, an unknown string goes to slot FarmHash64(string) mod
            slots, as Keras (TensorFlow's `to_hash_bucket_fast`).
        mask_token: Token mapped to index 0 in `"int"` mode (dropped in the
            other modes); None (default) for no mask.
        oov_token: Token returned for unknown indices with `invert` ("[UNK]").
        vocabulary: Optional list/array of strings or a text file path.
        idf_weights: Per-token weights for `output_mode="tf_idf"`.
        invert: Map indices back to strings.
        output_mode: "int" (default), "one_hot", "multi_hot", "count" or "tf_idf".
        pad_to_max_tokens: With the bag modes, make the output width `max_tokens`.
        sparse: Must be False (dense outputs only).
        encoding: Encoding of bytes inputs ("utf-8").
    """

    def __init__(
        self,
        max_tokens: int | None = None,
        num_oov_indices: int = 1,
        mask_token: str | None = None,
        oov_token: str = "[UNK]",
        vocabulary: Any = None,
        idf_weights: Any = None,
        invert: bool = False,
        output_mode: str = "int",
        pad_to_max_tokens: bool = False,
        sparse: bool = False,
        encoding: str = "utf-8",
        **kwargs: Any,
    ):
        kwargs.pop("vocabulary_dtype", None)
        self.encoding = encoding
        super().__init__(
            max_tokens=max_tokens,
            num_oov_indices=num_oov_indices,
            mask_token=mask_token,
            oov_token=oov_token,
            vocabulary_dtype="string",
            vocabulary=vocabulary,
            idf_weights=idf_weights,
            invert=invert,
            output_mode=output_mode,
            pad_to_max_tokens=pad_to_max_tokens,
            sparse=sparse,
            **kwargs,
        )

    def _prepare(self, values: np.ndarray) -> np.ndarray:
        out = np.empty(values.shape, dtype=object)
        flat = out.reshape(-1)
        for i, v in enumerate(values.reshape(-1).tolist()):
            if isinstance(v, bytes):
                v = v.decode(self.encoding)
            if not isinstance(v, str):
                raise ValueError(
                    f"Layer {self.name!r} expects string inputs. "
                    f"Received: inputs containing {v!r} of type {type(v).__name__}"
                )
            flat[i] = v
        return out

    def _oov_bucket(self, value: Any) -> int:
        return fingerprint64(value.encode(self.encoding)) % self.num_oov_indices

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg["encoding"] = self.encoding
        return cfg


class IntegerLookup(IndexLookup):
    """Maps integers to contiguous indices from a vocabulary (or back, with `invert`).

    Unknown values with several OOV slots go to slot `value mod num_oov_indices`.

    Args:
        max_tokens: Vocabulary size limit, special tokens included.
        num_oov_indices: Number of out-of-vocabulary slots (default 1).
        mask_token: Integer mapped to index 0 in `"int"` mode; None (default).
        oov_token: Integer returned for unknown indices with `invert` (-1).
        vocabulary: Optional list/array of integers or a text file path.
        vocabulary_dtype: "int64" (default) or "int32".
        idf_weights: Per-token weights for `output_mode="tf_idf"`.
        invert: Map indices back to integers.
        output_mode: "int" (default), "one_hot", "multi_hot", "count" or "tf_idf".
        pad_to_max_tokens: With the bag modes, make the output width `max_tokens`.
        sparse: Must be False (dense outputs only).
    """

    def __init__(
        self,
        max_tokens: int | None = None,
        num_oov_indices: int = 1,
        mask_token: int | None = None,
        oov_token: int = -1,
        vocabulary: Any = None,
        vocabulary_dtype: str = "int64",
        idf_weights: Any = None,
        invert: bool = False,
        output_mode: str = "int",
        sparse: bool = False,
        pad_to_max_tokens: bool = False,
        **kwargs: Any,
    ):
        if vocabulary_dtype not in ("int64", "int32"):
            raise ValueError(
                "`vocabulary_dtype` must be 'int64' or 'int32'. "
                f"Received: vocabulary_dtype={vocabulary_dtype!r}"
            )
        for arg, value in (("oov_token", oov_token), ("mask_token", mask_token)):
            if value is not None and not isinstance(value, (int, np.integer)):
                raise ValueError(
                    f"`{arg}` must be an integer for IntegerLookup. Received: {arg}={value!r}"
                )
        if isinstance(vocabulary, (list, tuple, np.ndarray)):
            vocabulary = [int(v) for v in np.asarray(vocabulary).reshape(-1).tolist()]
        super().__init__(
            max_tokens=max_tokens,
            num_oov_indices=num_oov_indices,
            mask_token=None if mask_token is None else int(mask_token),
            oov_token=int(oov_token),
            vocabulary_dtype=vocabulary_dtype,
            vocabulary=vocabulary,
            idf_weights=idf_weights,
            invert=invert,
            output_mode=output_mode,
            pad_to_max_tokens=pad_to_max_tokens,
            sparse=sparse,
            **kwargs,
        )

    def _prepare(self, values: np.ndarray) -> np.ndarray:
        out = np.empty(values.shape, dtype=object)
        flat = out.reshape(-1)
        for i, v in enumerate(values.reshape(-1).tolist()):
            if isinstance(v, str) and v.lstrip("-").isdigit():
                v = int(v)  # lines of a vocabulary file
            elif isinstance(v, float) and v.is_integer():
                v = int(v)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise ValueError(
                    f"Layer {self.name!r} expects integer inputs. "
                    f"Received: inputs containing {v!r} of type {type(v).__name__}"
                )
            flat[i] = int(v)
        return out

    def _oov_bucket(self, value: Any) -> int:
        return int(value) % self.num_oov_indices

    def _wrap_inverted(self, out: Any) -> Any:
        return Tensor(current_module().asarray(np.asarray(out, dtype=self.vocabulary_dtype)))
