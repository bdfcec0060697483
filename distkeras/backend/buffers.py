"""Fused parameter and gradient buffers.

`FlatBuffer` packs variables of one dtype into a single contiguous array and
rebinds each variable's `.data` to a view into it. Gradients get the same
layout, so an all-reduce is one call with no packing copy and an optimizer can
update every parameter with a handful of whole-buffer ufunc calls.
"""

from __future__ import annotations

from collections.abc import Sequence

from distkeras.backend import current_module
from distkeras.backend.autodiff import Variable


class FlatBuffer:
    """Variables of one dtype viewed into one flat array, plus a matching gradient array.

    Args:
        variables: The variables to fuse; all must share a dtype.

    Attributes:
        data: The flat parameter array; `variables[i].data` is a view into it.
        grad: The flat gradient array, laid out like `data`.
        offsets: Start of each variable in the flat arrays.
    """

    def __init__(self, variables: Sequence[Variable]):
        if not variables:
            raise ValueError("FlatBuffer needs at least one variable. Received: variables=[]")
        dtypes = {v.data.dtype for v in variables}
        if len(dtypes) != 1:
            names = sorted(map(str, dtypes))
            raise ValueError(f"FlatBuffer variables must share one dtype. Received: dtypes={names}")
        xp = current_module()
        self.variables = list(variables)
        self.dtype = dtypes.pop()
        self.offsets: list[int] = []
        total = 0
        for v in self.variables:
            self.offsets.append(total)
            total += int(v.data.size)
        self.size = total
        self.data = xp.empty(total, dtype=self.dtype)
        self.grad = xp.zeros(total, dtype=self.dtype)
        self.grad_views = []
        for v, off in zip(self.variables, self.offsets):
            n = int(v.data.size)
            view = self.data[off : off + n].reshape(v.data.shape)
            view[...] = v.data
            v.data = view
            self.grad_views.append(self.grad[off : off + n].reshape(view.shape))
        self.index = {id(v): i for i, v in enumerate(self.variables)}

    def is_intact(self) -> bool:
        """True while every variable still views into this buffer."""
        for v in self.variables:
            base = v.data.base if v.data.base is not None else v.data
            if base is not self.data and getattr(base, "base", None) is not self.data:
                return False
        return True

    def slot_like(self) -> object:
        """A zero array shaped like the flat buffer (for optimizer slots)."""
        return current_module().zeros(self.size, dtype=self.dtype)

    def views_of(self, flat) -> list:
        """Per-variable views into a flat array laid out like `data`."""
        return [
            flat[off : off + int(v.data.size)].reshape(v.data.shape)
            for v, off in zip(self.variables, self.offsets)
        ]
