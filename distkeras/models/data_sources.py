"""Recognises the data sources of other libraries and turns their values into NumPy.

pandas, PyTorch, TensorFlow and JAX are never imported here: a value is
recognised by the module its type (or one of its base classes) comes from,
and converted through its own methods (`to_numpy`, `.detach().cpu().numpy()`,
`.numpy()`, `__array__`). A user holding a `torch.Tensor` has torch loaded
already; one who does not never pays for it.

TensorFlow values are converted as Keras 3's NumPy iterator does: a dense
tensor through `.numpy()` (string tensors give object arrays of `bytes`), a
`tf.SparseTensor` densified (zeros where no value is stored), a
`tf.RaggedTensor` padded with zeros to its bounding shape (`to_tensor()`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distkeras.backend.autodiff import Tensor


def _type_modules(x: Any) -> list[tuple[str, str]]:
    """(module, class name) of the type of `x` and of each of its base classes."""
    return [(getattr(c, "__module__", "") or "", c.__name__) for c in type(x).__mro__]


def _from(x: Any, package: str, name: str | None = None) -> bool:
    """True when the type of `x` (or a base class) is `name` from `package` (or a sub-module)."""
    for module, cls in _type_modules(x):
        if (module == package or module.startswith(package + ".")) and (
            name is None or cls == name
        ):
            return True
    return False


def is_pandas(x: Any) -> bool:
    """A pandas DataFrame or Series."""
    return _from(x, "pandas", "DataFrame") or _from(x, "pandas", "Series")


def is_torch_tensor(x: Any) -> bool:
    return _from(x, "torch", "Tensor")


def is_tf_tensor(x: Any) -> bool:
    return _from(x, "tensorflow") and hasattr(x, "numpy") and hasattr(x, "dtype")


def _tf_to_numpy(a: Any) -> Any:
    """A TensorFlow value as NumPy, or None when `a` is not one (see the module docstring)."""
    if not _from(a, "tensorflow"):
        return None
    if _from(a, "tensorflow", "SparseTensor"):
        indices, values = np.asarray(a.indices.numpy()), np.asarray(a.values.numpy())
        dense = np.zeros(tuple(int(d) for d in a.dense_shape.numpy()), dtype=values.dtype)
        dense[tuple(indices.T)] = values
        return dense
    if _from(a, "tensorflow", "RaggedTensor"):
        return np.asarray(a.to_tensor().numpy())
    if hasattr(a, "numpy") and hasattr(a, "dtype"):
        return np.asarray(a.numpy())
    return None


def is_torch_dataloader(x: Any) -> bool:
    """A `torch.utils.data.DataLoader` (or a subclass)."""
    return _from(x, "torch.utils.data", "DataLoader")


def is_torch_dataset(x: Any) -> bool:
    """A map-style `torch.utils.data.Dataset` (indexed by sample, with a length)."""
    return (
        _from(x, "torch.utils.data", "Dataset")
        and not _from(x, "torch.utils.data", "IterableDataset")
        and hasattr(x, "__getitem__")
        and hasattr(x, "__len__")
    )


def is_torch_iterable_dataset(x: Any) -> bool:
    """A `torch.utils.data.IterableDataset` (a stream of samples)."""
    return _from(x, "torch.utils.data", "IterableDataset")


def is_tf_dataset(x: Any) -> bool:
    """A `tf.data.Dataset`, or any object with its batch-stream API.

    The API relied on: `as_numpy_iterator()` (or iteration yielding tensors),
    `shard(num_shards, index)` and `cardinality()`.
    """
    if _from(x, "tensorflow") and hasattr(x, "shard"):
        return True
    return all(hasattr(x, a) for a in ("as_numpy_iterator", "shard", "cardinality"))


def to_numpy(a: Any) -> Any:
    """One leaf as an array: NumPy (or a device array) unchanged, foreign tensors converted.

    A pandas Series becomes a column `(n, 1)`, as in Keras; a DataFrame its
    `(n, columns)` values.
    """
    if isinstance(a, np.ndarray):
        return a
    if isinstance(a, Tensor):  # e.g. `ops.one_hot(y)` passed to fit, as Keras allows
        return a.data
    if is_pandas(a):
        values = a.to_numpy()
        return values[:, None] if values.ndim == 1 else values
    if is_torch_tensor(a):
        return a.detach().cpu().numpy()
    converted = _tf_to_numpy(a)
    if converted is not None:
        return converted
    if _from(a, "jax") or _from(a, "jaxlib"):
        return np.asarray(a)
    if hasattr(a, "shape") and hasattr(a, "dtype"):
        return a  # NumPy-like (a CuPy array on GPU runs)
    return np.asarray(a)


def convert_struct(x: Any) -> Any:
    """`to_numpy` on every leaf of a tuple/list/dict structure (None stays None)."""
    if x is None:
        return None
    if isinstance(x, dict):
        return {k: convert_struct(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        values = [convert_struct(v) for v in x]
        return type(x)(*values) if hasattr(x, "_fields") else type(x)(values)  # namedtuples
    return to_numpy(x)


INFINITE_CARDINALITY = -1  # tf.data.INFINITE_CARDINALITY (e.g. after `.repeat()`)
UNKNOWN_CARDINALITY = -2  # tf.data.UNKNOWN_CARDINALITY (e.g. after `.filter()`)


def raw_cardinality(dataset: Any) -> int:
    """`dataset.cardinality()` as a Python int (TensorFlow returns a scalar tensor)."""
    card = dataset.cardinality
    card = card() if callable(card) else card
    if hasattr(card, "numpy"):
        card = card.numpy()
    return int(card)


def cardinality(dataset: Any) -> int | None:
    """Number of batches of a tf.data-like dataset; None when unknown or infinite."""
    card = raw_cardinality(dataset)
    return None if card < 0 else card


def auto_shard_off(dataset: Any) -> bool:
    """True when the dataset's options say it is sharded already (`AutoShardPolicy.OFF`).

    `dataset.options().experimental_distribute.auto_shard_policy`, as
    `tf.distribute` reads it; a dataset without options is sharded (AUTO).
    """
    options = getattr(dataset, "options", None)
    if not callable(options):
        return False
    try:
        policy = options().experimental_distribute.auto_shard_policy
    except AttributeError:
        return False
    name = getattr(policy, "name", None)
    return name == "OFF" if name is not None else int(policy) == -1


def numpy_batches(dataset: Any) -> Any:
    """An iterator over a tf.data-like dataset's batches as NumPy structures.

    A real `tf.data.Dataset` is iterated and each leaf converted as Keras does
    (sparse and ragged tensors densified); a stand-in through its
    `as_numpy_iterator()` when it has one.
    """
    if not _from(dataset, "tensorflow") and hasattr(dataset, "as_numpy_iterator"):
        return iter(dataset.as_numpy_iterator())
    return (convert_struct(b) for b in dataset)
