"""Row gather from a table (embedding lookup) with a sorted segment-sum backward.

The gradient of a lookup scatters-adds output rows into the table's rows.
`numpy.add.at` does that one element at a time. Here the indices are sorted;
rows of indices that occur once are copied in one fancy assignment, and only
runs of repeated indices are summed with `add.reduceat` (whose cost grows
with the number of runs): several times faster.
Array modules without `reduceat` (CuPy) use their native `add.at`.
"""

from __future__ import annotations

from distkeras.backend import current_module
from distkeras.backend.autodiff import Tensor, apply


def _scatter_rows(indices, rows, num_rows: int):
    """Returns a `(num_rows, D)` array with `rows[k]` summed into row `indices[k]`."""
    xp = current_module()
    out = xp.zeros((num_rows, rows.shape[1]), dtype=rows.dtype)
    if indices.size == 0:
        return out
    if not hasattr(xp.add, "reduceat"):
        xp.add.at(out, indices, rows)
        return out
    # Sort, then copy the rows of indices seen once and sum runs of repeated indices.
    order = xp.argsort(indices)
    idx = indices[order]
    starts = xp.flatnonzero(xp.concatenate([xp.ones(1, dtype=bool), idx[1:] != idx[:-1]]))
    lengths = xp.diff(xp.concatenate([starts, xp.asarray([idx.size])]))
    single = lengths == 1
    first = starts[single]
    out[idx[first]] = rows[order[first]]
    if not bool(single.all()):
        repeated = xp.repeat(~single, lengths)
        sub_idx = idx[repeated]
        sub_starts = xp.flatnonzero(
            xp.concatenate([xp.ones(1, dtype=bool), sub_idx[1:] != sub_idx[:-1]])
        )
        out[sub_idx[sub_starts]] = xp.add.reduceat(rows[order[repeated]], sub_starts, axis=0)
    return out


def _gather_rows(table, indices):
    xp = current_module()
    flat = indices.reshape(-1)
    out = xp.take(table, flat, axis=0).reshape(indices.shape + table.shape[1:])

    def vjp(g, needs):
        rows = g.reshape(flat.size, -1)
        grad = _scatter_rows(flat, rows, table.shape[0])
        return (grad.reshape(table.shape), None)

    return out, vjp


def embedding_lookup(table, indices) -> Tensor:
    """Gathers rows of `table` at integer `indices`: output shape `indices.shape + (D,)`.

    Args:
        table: `(num_rows, D)` array or Tensor.
        indices: Integer array or Tensor of any shape, values in `[0, num_rows)`.
    """
    xp = current_module()
    idx = indices.data if isinstance(indices, Tensor) else xp.asarray(indices)
    if idx.dtype.kind not in "iu":
        idx = idx.astype("int64")
    return apply(_gather_rows, table, idx)
