"""Row gather from a table (embedding lookup) with a sorted segment-sum backward.

The gradient of a lookup scatters-adds output rows into the table's rows.
`numpy.add.at` does that one element at a time. Here the indices are sorted
(stably); the first row of every run of equal indices is copied in one fancy
assignment, then the second rows added, and so on (each level's indices are
unique), or, when some index repeats more than `_MAX_LEVELS` times, runs are
summed with `add.reduceat`: two to four times faster than `add.at`. With a
sink (the table's slot of the fused gradient buffer) the result is written
there directly.
Array modules without `reduceat` (CuPy) use their native `add.at`.
"""

from __future__ import annotations

from distkeras.backend import current_module
from distkeras.backend.autodiff import Tensor, apply

# Up to this many repeats of one index, repeats are added level by level (fancy adds
# with unique indices); more repeats go through `add.reduceat`.
_MAX_LEVELS = 8


def _scatter_rows(indices, rows, num_rows: int, out=None):
    """Returns a `(num_rows, D)` array with `rows[k]` summed into row `indices[k]`.

    Up to `_MAX_LEVELS` repeats, the rows of one index are summed in their
    input order (the same bits as `add.at`); more repeats are summed by
    `add.reduceat` in NumPy's reduction order. Either way the result does not
    depend on the sort algorithm. `out`, when given, receives the result (it is
    zeroed first).
    """
    xp = current_module()
    if out is None:
        out = xp.zeros((num_rows, rows.shape[1]), dtype=rows.dtype)
    else:
        out.fill(0)
    if indices.size == 0:
        return out
    if not hasattr(xp.add, "reduceat"):
        xp.add.at(out, indices, rows)
        return out
    n = indices.size
    if num_rows * n < 2**62:
        # a stable order from the default (vectorised) sort, four times faster than
        # the stable one: the key index * n + position has no ties
        key = indices.astype(xp.int64) * n
        key += xp.arange(n)
        order = xp.argsort(key)
    else:
        order = xp.argsort(indices, kind="stable")
    idx = indices[order]
    new = xp.empty(n, dtype=bool)
    new[0] = True
    xp.not_equal(idx[1:], idx[:-1], out=new[1:])
    pos = xp.arange(n)
    rank = pos - xp.maximum.accumulate(xp.where(new, pos, 0))  # position within its run
    if int(rank.max()) < _MAX_LEVELS:
        # Level k adds the k-th row of every run: its indices are unique.
        sel = xp.flatnonzero(new)
        out[idx[sel]] = rows[order[sel]]
        for level in range(1, int(rank.max()) + 1):
            sel = xp.flatnonzero(rank == level)
            out[idx[sel]] += rows[order[sel]]
        return out
    starts = xp.flatnonzero(new)
    out[idx[starts]] = xp.add.reduceat(rows[order], starts, axis=0)
    return out


def _gather_rows(table, indices):
    xp = current_module()
    flat = indices.reshape(-1)
    out = xp.take(table, flat, axis=0).reshape(indices.shape + table.shape[1:])

    def vjp(g, needs, outs=(None, None)):
        rows = g.reshape(flat.size, -1)
        sink = outs[0]
        if sink is not None:  # the table's slot of the fused gradient buffer
            _scatter_rows(flat, rows, table.shape[0], out=sink.reshape(table.shape[0], -1))
            return (sink, None)
        grad = _scatter_rows(flat, rows, table.shape[0])
        return (grad.reshape(table.shape), None)

    vjp.accepts_out = True
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
