"""`CategoryEncoding`: integer category ids as one-hot, multi-hot or count vectors."""

from __future__ import annotations

from typing import Any

import numpy as np

from distkeras.backend import current_module
from distkeras.backend.autodiff import Tensor, convert_to_tensor
from distkeras.layers.layer import Layer

_MODES = ("one_hot", "multi_hot", "count")


class CategoryEncoding(Layer):
    """Encodes integer ids in `[0, num_tokens)` as dense float vectors (no gradient).

    - `"one_hot"`: each id becomes a vector; a trailing axis of size 1 is
      replaced, otherwise a new last axis is added.
    - `"multi_hot"`: the last axis (the ids of one sample) becomes one vector
      with 1 for each id present; a rank-1 input is one sample.
    - `"count"`: like multi_hot, counting each id (weighted by `count_weights`).

    Ids outside the range give all-zero contributions, as Keras's JAX backend.

    Args:
        num_tokens: Number of categories.
        output_mode: `"multi_hot"` (default), `"one_hot"` or `"count"`.
        sparse: Must be False (dense outputs only).
    """

    def __init__(
        self,
        num_tokens: int | None = None,
        output_mode: str = "multi_hot",
        sparse: bool = False,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if num_tokens is None:
            raise ValueError(
                "num_tokens must be set to use this layer. If the number of tokens is not "
                "known beforehand, use the IntegerLookup layer instead. Received: num_tokens=None"
            )
        if isinstance(num_tokens, bool) or not isinstance(num_tokens, (int, np.integer)):
            raise ValueError(
                f"`num_tokens` must be an integer. Received: num_tokens={num_tokens!r}"
            )
        if num_tokens < 1:
            raise ValueError(f"`num_tokens` must be >= 1. Received: num_tokens={num_tokens}")
        if output_mode not in _MODES:
            raise ValueError(
                f"Unknown arg for output_mode: expected one of {_MODES}. "
                f"Received: output_mode={output_mode!r}"
            )
        if sparse:
            raise ValueError("Sparse outputs are not supported. Received: sparse=True")
        self.num_tokens = int(num_tokens)
        self.output_mode = output_mode
        self.sparse = False

    def call(self, inputs: Any, count_weights: Any = None) -> Tensor:
        if count_weights is not None and self.output_mode != "count":
            raise ValueError(
                "`count_weights` is only used when `output_mode` is 'count'. "
                f"Received: output_mode={self.output_mode!r}, count_weights of shape "
                f"{np.shape(count_weights)}"
            )
        xp = current_module()
        ids = convert_to_tensor(inputs).data
        dtype = np.dtype(self.compute_dtype)
        if self.output_mode == "one_hot" and ids.ndim > 1 and ids.shape[-1] == 1:
            ids = ids[..., 0]
        hot = (ids[..., None] == xp.arange(self.num_tokens)).astype(dtype)
        if self.output_mode == "one_hot":
            return Tensor(hot)
        if count_weights is not None:
            hot = hot * xp.asarray(convert_to_tensor(count_weights).data, dtype=dtype)[..., None]
        out = hot.sum(axis=-2)
        if self.output_mode == "multi_hot":
            out = (out > 0).astype(dtype)
        return Tensor(out)

    def compute_output_shape(self, input_shape: Any) -> tuple:
        shape = tuple(input_shape)
        if self.output_mode == "one_hot":
            if len(shape) > 1 and shape[-1] == 1:
                shape = shape[:-1]
            return (*shape, self.num_tokens)
        return (*shape[:-1], self.num_tokens)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {"num_tokens": self.num_tokens, "output_mode": self.output_mode, "sparse": self.sparse}
        )
        return config
