"""Linear algebra, public like `keras.ops.linalg` (also exported at the top of
`distkeras.ops`, as Keras does).

Each differentiable decomposition is one primitive whose vector-Jacobian
product sits next to its forward (the standard matrix-calculus results);
the rest are compositions. Everything works on stacks of matrices `(..., M, N)`
through the array module's batched `linalg`, so the same code runs on CuPy.

A factorization that fails raises as Keras's NumPy backend does (NumPy's
`LinAlgError`, a `ValueError`, for a singular matrix given to `inv` or `solve`;
`ValueError("Cholesky decomposition failed: ...")`), unless floating-point "invalid"
errors are ignored (`np.errstate(invalid="ignore")`, the state in which
symbolic shapes are inferred from stand-in arrays of ones): then its result
is NaN, as on CuPy, JAX and TensorFlow.

`slogdet` is public at the top of `distkeras.ops` only in Keras; `norm` is
Keras's one `keras.ops.norm` = `keras.ops.linalg.norm` (matrix and vector
norms), public in both places here too.
"""

from __future__ import annotations

from typing import Any

import numpy as _np

from distkeras.backend import current_module as _xp
from distkeras.backend import primitives as _P
from distkeras.backend import to_numpy as _to_numpy
from distkeras.backend.autodiff import Tensor
from distkeras.backend.autodiff import apply as _apply
from distkeras.backend.primitives import float_tensor as _float
from distkeras.backend.reduction_primitives import max as _max
from distkeras.backend.reduction_primitives import min as _min
from distkeras.backend.reduction_primitives import sum as _sum
from distkeras.backend.shape_primitives import sum_to as _sum_to

__all__ = [
    "cholesky",
    "cholesky_inverse",
    "det",
    "eig",
    "eigh",
    "inv",
    "lstsq",
    "lu_factor",
    "matrix_rank",
    "norm",
    "pinv",
    "qr",
    "slogdet",
    "solve",
    "solve_triangular",
    "svd",
]


# ----------------------------------------------------------------- helpers
def _mT(a: Any) -> Any:  # noqa: N802 - the matrix transpose, as NumPy names it
    return _xp().swapaxes(a, -1, -2)


def _assert_2d(x: Any) -> None:
    if x.ndim < 2:
        raise ValueError(
            f"Expected input to have rank >= 2. Received input with shape {tuple(x.shape)}."
        )


def _assert_square(x: Any) -> None:
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(
            f"Expected a square matrix. Received non-square input with shape {tuple(x.shape)}"
        )


def _matrix(x: Any) -> Tensor:
    x = _float(x)
    _assert_2d(x)
    return x


def _square(x: Any) -> Tensor:
    x = _matrix(x)
    _assert_square(x)
    return x


def _guarded(name: str | None, compute: Any, nan_shape: Any, dtype: Any) -> Any:
    """Runs `compute()`; a LinAlgError (a ValueError) gives NaN when "invalid" is ignored,
    else propagates, as `ValueError("<name> failed: ...")` when `name` is given."""
    try:
        return compute()
    except Exception as e:  # noqa: BLE001 - numpy.linalg.LinAlgError or CuPy's
        if "LinAlgError" not in type(e).__name__:
            raise
        if _np.geterr()["invalid"] == "ignore":
            return _xp().full(nan_shape, _np.nan, dtype=dtype)
        if name is None:
            raise
        raise ValueError(f"{name} failed: {e}") from e


def _multi(fn: Any, *inputs: Any) -> list[Tensor]:
    """Applies a primitive with several outputs, as one flat packed tensor.

    `fn(*arrays)` returns `(outputs, vjp)` with `vjp(grads, needs)` taking one
    gradient (or None) per output.
    """
    meta: list = []

    def packed(*arrays):
        xp = _xp()
        outs, vjp = fn(*arrays)
        meta.extend((o.shape, o.size) for o in outs)

        def unpack_vjp(g, needs):
            gs, at = [], 0
            for shape, size in meta:
                piece = g[at : at + size]
                gs.append(None if not xp.any(piece) else piece.reshape(shape))
                at += size
            return vjp(tuple(gs), needs)

        return xp.concatenate([o.ravel() for o in outs]), unpack_vjp

    flat = _apply(packed, *inputs)
    pieces, at = [], 0
    for shape, size in meta:
        pieces.append(_P.reshape(_P.getitem(flat, slice(at, at + size)), shape))
        at += size
    return pieces


# ----------------------------------------------------------------- primitives
def _inv(a):
    xp = _xp()
    out = _guarded(None, lambda: xp.linalg.inv(a), a.shape, a.dtype)

    def vjp(g, needs):
        t = _mT(out)
        return (-(t @ g @ t),)

    return out, vjp


def _det(a):
    xp = _xp()
    out = xp.linalg.det(a)

    def vjp(g, needs):
        ainv = xp.linalg.inv(a)
        return ((g * out)[..., None, None] * _mT(ainv),)

    return out, vjp


def _logabsdet(a):
    xp = _xp()
    _, out = xp.linalg.slogdet(a)

    def vjp(g, needs):
        return (g[..., None, None] * _mT(xp.linalg.inv(a)),)

    return out, vjp


def _solve(a, b):
    xp = _xp()
    vector = b.ndim == 1
    bm = b[:, None] if vector else b
    shape = _np.broadcast_shapes(a.shape[:-2], bm.shape[:-2]) + bm.shape[-2:]
    x = _guarded(None, lambda: xp.linalg.solve(a, bm), shape, a.dtype)

    def vjp(g, needs):
        gm = g[..., None] if vector else g
        gb = xp.linalg.solve(_mT(a), gm)
        ga = -(gb @ _mT(x)) if needs[0] else None
        gb = gb[..., 0] if vector else gb
        return (
            None if ga is None else _sum_to(ga, a.shape),
            _sum_to(gb, b.shape) if needs[1] else None,
        )

    return (x[..., 0] if vector else x), vjp


def _cholesky(a):
    xp = _xp()
    L = _guarded("Cholesky decomposition", lambda: xp.linalg.cholesky(a), a.shape, a.dtype)

    def vjp(g, needs):
        n = a.shape[-1]
        phi = xp.tril(_mT(L) @ g)
        phi = phi - 0.5 * xp.eye(n, dtype=a.dtype) * phi
        linv = xp.linalg.inv(L)
        s = _mT(linv) @ phi @ linv
        return (0.5 * (s + _mT(s)),)

    return L, vjp


def _eigh(a):
    xp = _xp()
    w, v = xp.linalg.eigh(a)

    def vjp(g, needs):
        gw, gv = g
        n = a.shape[-1]
        eye_f = xp.eye(n, dtype=a.dtype)
        inner = xp.zeros(a.shape, dtype=a.dtype) if gw is None else gw[..., None] * eye_f
        if gv is not None:
            diff = w[..., None, :] - w[..., :, None]
            eye = xp.eye(n, dtype=bool)
            f = xp.where(eye, 0.0, 1.0 / xp.where(eye, 1.0, diff))
            inner = inner + f * (_mT(v) @ gv)
        ga = v @ inner @ _mT(v)
        return (0.5 * (ga + _mT(ga)),)

    return (w, v), vjp


def _qr_tall_vjp(q, r, gq, gr):
    """The VJP of reduced QR of a tall or square matrix (`r` square)."""
    xp = _xp()
    mm = r @ _mT(gr) - _mT(gq) @ q
    low = xp.tril(mm, -1)
    copyltu = low + _mT(low) + xp.eye(r.shape[-1], dtype=r.dtype) * mm
    b = gq + q @ copyltu
    return _mT(xp.linalg.solve(r, _mT(b)))


def _qr(a, mode):
    xp = _xp()
    q, r = xp.linalg.qr(a, mode=mode)

    def vjp(g, needs):
        gq, gr = g
        m, n = a.shape[-2:]
        if mode == "complete" and m > n:
            raise NotImplementedError(
                "qr: gradients of mode 'complete' need a square or wide input. "
                f"Received: x.shape={tuple(a.shape)}, mode={mode!r}"
            )
        gq = xp.zeros_like(q) if gq is None else gq
        gr = xp.zeros_like(r) if gr is None else gr
        if m >= n:
            return (_qr_tall_vjp(q, r, gq, gr),)
        # wide: a = [x | y], r = [u | q^T y]; x = q u is a square QR
        y, gv = a[..., m:], gr[..., m:]
        gx = _qr_tall_vjp(q, r[..., :m], gq + y @ _mT(gv), gr[..., :m])
        return (xp.concatenate([gx, q @ gv], axis=-1),)

    return (q, r), vjp


def _singular_values(a):
    xp = _xp()
    u, s, vh = xp.linalg.svd(a, full_matrices=False)

    def vjp(g, needs):
        return ((u * g[..., None, :]) @ vh,)

    return s, vjp


def _svd(a, full_matrices):
    xp = _xp()
    u, s, vh = xp.linalg.svd(a, full_matrices=full_matrices)

    def vjp(g, needs):
        gu, gs, gvh = g
        m, n = a.shape[-2:]
        k = min(m, n)
        if gu is None and gvh is None:
            return ((u[..., :k] * gs[..., None, :]) @ vh[..., :k, :],)
        if full_matrices and m != n:
            raise NotImplementedError(
                "svd: gradients through u and vh need full_matrices=False (or a square "
                f"input). Received: x.shape={tuple(a.shape)}, full_matrices=True"
            )
        v, gv = _mT(vh), None if gvh is None else _mT(gvh)
        s2 = s * s
        e = s2[..., None, :] - s2[..., :, None]
        eye = xp.eye(k, dtype=bool)
        e = xp.where(eye, 1.0, e)
        inner = xp.zeros(a.shape[:-2] + (k, k), dtype=a.dtype)
        if gu is not None:
            x = _mT(u) @ gu
            inner = inner + (x - _mT(x)) * s[..., None, :]
        if gv is not None:
            y = _mT(v) @ gv
            inner = inner + s[..., :, None] * (y - _mT(y))
        inner = xp.where(eye, 0.0, inner / e)
        if gs is not None:
            inner = inner + gs[..., None, :] * xp.eye(k, dtype=a.dtype)
        ga = inner
        if m > k and gu is not None:
            gus = gu / s[..., None, :]
            ga = (u @ ga + gus - u @ (_mT(u) @ gus)) @ vh
        elif n > k and gv is not None:
            sgvh = gvh / s[..., :, None]
            ga = u @ (ga @ vh + sgvh - (sgvh @ v) @ vh)
        else:
            ga = u @ ga @ vh
        return (ga,)

    return (u, s, vh), vjp


def _pinv_vjp(a, x, g):
    xp = _xp()
    m, n = a.shape[-2:]
    p = xp.eye(m, dtype=a.dtype) - a @ x
    q = xp.eye(n, dtype=a.dtype) - x @ a
    gt = _mT(g)
    return -(_mT(x) @ g @ _mT(x)) + p @ gt @ x @ _mT(x) + _mT(x) @ x @ gt @ q


def _pinv(a, rcond):
    xp = _xp()
    x = xp.linalg.pinv(a) if rcond is None else xp.linalg.pinv(a, rcond=rcond)

    def vjp(g, needs):
        return _pinv_vjp(a, x, g), None

    return x, vjp


def _lstsq(a, b, rcond):
    xp = _xp()
    x = xp.linalg.lstsq(a, b, rcond=rcond)[0]

    def vjp(g, needs):
        ap = xp.linalg.pinv(a)
        gm = g[:, None] if g.ndim == 1 else g
        bm = b[:, None] if b.ndim == 1 else b
        ga = _pinv_vjp(a, ap, gm @ _mT(bm)) if needs[0] else None
        gb = _mT(ap) @ gm if needs[1] else None
        if gb is not None and b.ndim == 1:
            gb = gb[:, 0]
        return ga, gb, None

    return x, vjp


# ----------------------------------------------------------------- public ops
def inv(x) -> Tensor:
    """Inverse of a square matrix (or a stack of them)."""
    return _apply(_inv, _square(x))


def det(x) -> Tensor:
    """Determinant of a square matrix, shape `(...,)`."""
    return _apply(_det, _square(x))


def slogdet(x) -> tuple[Tensor, Tensor]:
    """Sign and natural log of the absolute determinant, `(sign, logabsdet)`."""
    x = _square(x)
    sign = _xp().linalg.slogdet(x.data)[0]
    return Tensor(sign), _apply(_logabsdet, x)


def solve(a, b) -> Tensor:
    """Solves `a @ x = b` for `x` (`b` of shape `(M,)` or `(..., M, K)`)."""
    a, b = _square(a), _float(b)
    if b.ndim < 1:
        raise ValueError(f"Expected input to have rank >= 1. Received scalar input {b}.")
    return _apply(_solve, a, b)


def solve_triangular(a, b, lower: bool = False) -> Tensor:
    """Solves `a @ x = b` using only the lower (or upper) triangle of `a`."""
    a, b = _square(a), _float(b)
    if b.ndim < 1:
        raise ValueError(f"Expected input to have rank >= 1. Received scalar input {b}.")
    xp = _xp()
    n = a.shape[-1]
    mask = xp.tril(xp.ones((n, n), dtype=a.data.dtype))
    mask = mask if lower else mask.T
    tri = _P.multiply(a, Tensor(mask))
    if b.ndim == a.ndim - 1:
        return _P.getitem(_apply(_solve, tri, _P.reshape(b, (*b.shape, 1))), (..., 0))
    return _apply(_solve, tri, b)


def cholesky(x, upper: bool = False) -> Tensor:
    """Cholesky factor of a symmetric positive-definite matrix (lower unless `upper`)."""
    factor = _apply(_cholesky, _square(x))
    return _P.transpose(factor, _swap_last(factor.ndim)) if upper else factor


def _swap_last(ndim: int) -> tuple:
    return (*range(ndim - 2), ndim - 1, ndim - 2)


def cholesky_inverse(x, upper: bool = False) -> Tensor:
    """Inverse of `A` given its Cholesky factor (`A = L L^T`, or `U^T U` when `upper`)."""
    x = _square(x)
    eye = Tensor(_xp().broadcast_to(_xp().eye(x.shape[-1], dtype=x.data.dtype), x.shape))
    inv_chol = solve_triangular(x, eye, lower=not upper)
    t = _P.transpose(inv_chol, _swap_last(x.ndim))
    return _P.matmul(inv_chol, t) if upper else _P.matmul(t, inv_chol)


def eig(x) -> tuple[Tensor, Tensor]:
    """Eigenvalues and right eigenvectors of a square matrix (complex; no gradient).

    Always complex (complex64 for float32 input), as on JAX, TensorFlow and
    PyTorch; NumPy alone returns real arrays when every eigenvalue is real.
    """
    x = _square(x)
    xp = _xp()
    if hasattr(xp.linalg, "eig"):
        w, v = xp.linalg.eig(x.data)
    else:  # CuPy before 14 has no general eigensolver: computed on the host
        w, v = (xp.asarray(t) for t in _np.linalg.eig(_to_numpy(x.data)))
    ctype = _np.result_type(x.data.dtype, _np.complex64)
    return Tensor(w.astype(ctype)), Tensor(v.astype(ctype))


def eigh(x) -> tuple[Tensor, Tensor]:
    """Eigenvalues (ascending) and eigenvectors of a symmetric matrix (lower triangle)."""
    w, v = _multi(_eigh, _square(x))
    return w, v


def qr(x, mode: str = "reduced") -> tuple[Tensor, Tensor]:
    """QR decomposition `(q, r)`; `mode` is `"reduced"` or `"complete"`."""
    if mode not in {"reduced", "complete"}:
        raise ValueError(
            "`mode` argument value not supported. Expected one of {'reduced', 'complete'}. "
            f"Received: mode={mode}"
        )
    q, r = _multi(lambda a: _qr(a, mode), _matrix(x))
    return q, r


def svd(x, full_matrices: bool = True, compute_uv: bool = True) -> Any:
    """Singular value decomposition `(u, s, vh)`, or `s` alone when not `compute_uv`.

    Gradients through `u` and `vh` need distinct singular values and
    `full_matrices=False` (or a square input); through `s` they always flow.
    """
    x = _matrix(x)
    if not compute_uv:
        return _apply(_singular_values, x)
    u, s, vh = _multi(lambda a: _svd(a, full_matrices), x)
    return u, s, vh


def pinv(x, rcond=None) -> Tensor:
    """Moore-Penrose pseudo-inverse, shape `(..., N, M)`."""
    return _apply(_pinv, _matrix(x), rcond)


def lstsq(a, b, rcond=None) -> Tensor:
    """Least-squares solution of `a @ x = b` (`a` of shape `(M, N)`, `b` `(M,)` or `(M, K)`)."""
    a, b = _float(a), _float(b)
    if a.ndim != 2:
        raise ValueError(f"Expected a to have rank 2. Received: a.shape={a.shape}")
    if b.ndim not in (1, 2):
        raise ValueError(f"Expected b to have rank 1 or 2. Received: b.shape={b.shape}")
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            "Incompatible shapes: b.shape[0] must equal a.shape[0]. "
            f"Received: a.shape={a.shape}, b.shape={b.shape}"
        )
    return _apply(_lstsq, a, b, rcond)


def matrix_rank(x, tol=None) -> Tensor:
    """Rank of a matrix from its singular values, int32 (no gradient)."""
    x = _matrix(x)
    return Tensor(_xp().linalg.matrix_rank(x.data, tol=tol).astype("int32"))


def lu_factor(x) -> tuple[Tensor, Tensor]:
    """LU factorization with partial pivoting, `(lu, pivots)` as `scipy.linalg.lu_factor`.

    `lu` holds `U` and the unit-lower `L` below its diagonal; `pivots[i]` is the
    row swapped with row `i` (int32). No gradient.
    """
    x = _matrix(x)
    xp = _xp()
    lu = xp.array(x.data, copy=True)
    m, n = lu.shape[-2:]
    k = min(m, n)
    piv = xp.zeros((*lu.shape[:-2], k), dtype="int32")
    idx = xp.indices(lu.shape[:-2])
    for j in range(k):
        p = j + xp.argmax(xp.abs(lu[..., j:, j]), axis=-1)
        piv[..., j] = p
        rows_j = lu[..., j, :].copy()
        rows_p = lu[(*idx, p)].copy()
        lu[..., j, :] = rows_p
        lu[(*idx, p)] = rows_j
        pivot = lu[..., j, j]
        safe = xp.where(pivot == 0, 1, pivot)
        lu[..., j + 1 :, j] = xp.where(
            pivot[..., None] == 0, 0, lu[..., j + 1 :, j] / safe[..., None]
        )
        lu[..., j + 1 :, j + 1 :] -= lu[..., j + 1 :, j, None] * lu[..., j, None, j + 1 :]
    return Tensor(lu), Tensor(piv)


def norm(x, ord=None, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A002
    """Vector or matrix norm over `axis` (as `numpy.linalg.norm`)."""
    x = _float(x)
    nd = x.ndim
    if isinstance(ord, str) and ord not in ("fro", "nuc"):
        raise ValueError(
            "Invalid `ord` argument. Expected one of {'fro', 'nuc'} when using string. "
            f"Received: ord={ord}"
        )
    if axis is None:
        if ord is None:
            return _keep(_P.sqrt(_sum(_P.square(x))), nd, tuple(range(nd)), keepdims)
        axis = tuple(range(nd))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    axes = tuple(a % nd for a in axes)
    if len(axes) == 1:
        return _vector_norm(x, ord, axes[0], keepdims)
    if len(axes) == 2:
        return _matrix_norm(x, ord, axes, keepdims)
    raise ValueError(f"Improper number of dimensions to norm. Received: axis={axis}")


def _keep(out: Tensor, nd: int, axes: tuple, keepdims: bool) -> Tensor:
    if not keepdims:
        return out
    shape = [1 if i in axes else s for i, s in enumerate(_full_shape_of(out, nd, axes))]
    return _P.reshape(out, tuple(shape))


def _full_shape_of(out: Tensor, nd: int, axes: tuple) -> list:
    rest = iter(out.shape)
    return [1 if i in axes else next(rest) for i in range(nd)]


def _vector_norm(x: Tensor, ord: Any, axis: int, keepdims: bool) -> Tensor:  # noqa: A002
    if isinstance(ord, str):
        raise ValueError(f"Invalid `ord` argument for vector norm. Received: ord={ord}")
    a = _P.absolute(x)
    if ord is None or ord == 2:
        return _P.sqrt(_sum(_P.square(x), axis=axis, keepdims=keepdims))
    if ord == float("inf"):
        return _max(a, axis=axis, keepdims=keepdims)
    if ord == float("-inf"):
        return _min(a, axis=axis, keepdims=keepdims)
    if ord == 0:
        nz = _xp().sum(x.data != 0, axis=axis, keepdims=keepdims).astype(x.data.dtype)
        return Tensor(nz)
    if ord == 1:
        return _sum(a, axis=axis, keepdims=keepdims)
    p = float(ord)
    return _P.power(_sum(_P.power(a, p), axis=axis, keepdims=keepdims), 1.0 / p)


def _matrix_norm(x: Tensor, ord: Any, axes: tuple, keepdims: bool) -> Tensor:  # noqa: A002
    r, c = axes
    if ord in (None, "fro"):
        return _sum_sqrt(x, axes, keepdims)
    if ord not in ("nuc", float("inf"), float("-inf"), 1, -1, 2, -2):
        raise ValueError(f"Invalid `ord` argument for matrix norm. Received: ord={ord}")
    nd = x.ndim
    if ord in ("nuc", 2, -2):
        rest = [i for i in range(nd) if i not in axes]
        s = _apply(_singular_values, _P.transpose(x, (*rest, r, c)))
        red = {"nuc": _sum, 2: _max, -2: _min}[ord]
        out = red(s, axis=-1)
    else:
        sum_axis, red_axis = (r, c) if ord in (1, -1) else (c, r)
        reduce = _max if ord in (1, float("inf")) else _min
        sums = _sum(_P.absolute(x), axis=sum_axis, keepdims=True)
        out = _sum(reduce(sums, axis=red_axis, keepdims=True), axis=axes)
    return _keep(out, nd, axes, keepdims)


def _sum_sqrt(x: Tensor, axes: tuple, keepdims: bool) -> Tensor:
    return _P.sqrt(_sum(_P.square(x), axis=axes, keepdims=keepdims))
