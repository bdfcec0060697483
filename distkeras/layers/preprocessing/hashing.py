"""`Hashing`: values to `num_bins` bins by TensorFlow's string hashes, as Keras does.

Numbers are hashed as their decimal string (floats truncated to integers
first); strings as their UTF-8 bytes. Without `salt` the bin is FarmHash
Fingerprint64 mod bins, with it SipHash-2-4 keyed by the salt, so bins equal
Keras's (which calls `tf.strings.to_hash_bucket_fast` / `_strong`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distkeras.backend import current_module, floatx, to_numpy
from distkeras.backend.autodiff import Tensor
from distkeras.layers.keras_tensor import KerasTensor
from distkeras.layers.layer import Layer
from distkeras.layers.preprocessing.index_lookup import encode_ids
from distkeras.layers.preprocessing.string_hash import fingerprint64, siphash24

_MODES = ("int", "one_hot", "multi_hot", "count")


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (float, np.floating)):
        value = int(value)  # Keras casts floats to int64 before hashing
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(
            f"Hashing expects strings or numbers. Received: inputs containing {value!r}"
        )
    return str(int(value)).encode("ascii")


class Hashing(Layer):
    """Hashes strings or numbers into `num_bins` bins.

    Args:
        num_bins: Number of bins (with `mask_value`, bin 0 is the mask's).
        mask_value: Value mapped to bin 0; the others hash into 1..num_bins-1.
        salt: None (FarmHash), an int `s` (SipHash key `(s, s)`) or a pair of ints.
        output_mode: "int" (default), "one_hot", "multi_hot" or "count".
        sparse: Must be False (dense outputs only).
    """

    def __init__(
        self,
        num_bins: int,
        mask_value: Any = None,
        salt: Any = None,
        output_mode: str = "int",
        sparse: bool = False,
        **kwargs: Any,
    ):
        if kwargs.get("dtype") is None:
            kwargs["dtype"] = "int64" if output_mode == "int" else floatx()
        super().__init__(**kwargs)
        if num_bins is None or isinstance(num_bins, bool) or num_bins <= 0:
            raise ValueError(
                "The `num_bins` for `Hashing` cannot be `None` or non-positive values. "
                f"Received: num_bins={num_bins}"
            )
        if output_mode not in _MODES:
            raise ValueError(
                f"Invalid value for argument `output_mode`. Expected one of {_MODES}. "
                f"Received: output_mode={output_mode}"
            )
        if sparse:
            raise ValueError("Sparse outputs are not supported. Received: sparse=True")
        if salt is not None:
            if isinstance(salt, (tuple, list)) and len(salt) == 2:
                salt = [int(s) for s in salt]
            elif isinstance(salt, int) and not isinstance(salt, bool):
                salt = [salt, salt]
            else:
                raise ValueError(
                    "The `salt` argument for `Hashing` can only be a tuple of size 2 "
                    f"integers, or a single integer. Received: salt={salt}"
                )
        self.num_bins = int(num_bins)
        self.mask_value = mask_value
        self.salt = salt
        self.output_mode = output_mode
        self.sparse = False
        self.built = True

    def __call__(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(inputs, KerasTensor):
            return super().__call__(inputs, *args, **kwargs)
        return self.call(inputs)

    def _bins(self, values: np.ndarray) -> np.ndarray:
        bins = self.num_bins
        masked = self.mask_value is not None and bins > 1
        if masked:
            bins -= 1
        flat = values.reshape(-1).tolist()
        out = np.empty(len(flat), dtype=np.int64)
        for i, v in enumerate(flat):
            if masked and v == self.mask_value:
                out[i] = 0
                continue
            data = _as_bytes(v)
            h = fingerprint64(data) if self.salt is None else siphash24(self.salt, data)
            out[i] = h % bins + (1 if masked else 0)
        return out.reshape(values.shape)

    def call(self, inputs: Any) -> Tensor:
        if isinstance(inputs, Tensor):
            inputs = inputs.data
        single = isinstance(inputs, (str, bytes))
        values = np.asarray([inputs] if single else to_numpy(inputs), dtype=object)
        if self.output_mode == "one_hot" and values.ndim > 1 and values.shape[-1] == 1:
            values = values[..., 0]
        ids = self._bins(values)
        if self.output_mode == "int":
            out = ids
        else:
            out = encode_ids(ids, self.output_mode, self.num_bins).astype(self.compute_dtype)
        return Tensor(current_module().asarray(out[0] if single else out))

    def compute_output_shape(self, input_shape: Any) -> tuple:
        shape = tuple(input_shape)
        if self.output_mode == "int":
            return shape
        return (*shape[:-1], self.num_bins)  # as Keras, for every bag mode

    def get_config(self) -> dict:
        cfg = super().get_config()
        cfg.update(
            {
                "num_bins": self.num_bins,
                "salt": self.salt,
                "mask_value": self.mask_value,
                "output_mode": self.output_mode,
                "sparse": self.sparse,
            }
        )
        return cfg
