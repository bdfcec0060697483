"""The `keras.ops.core` functions: control flow (cond, while_loop, scan, ...),
custom gradients and `jvp` (slicing and scatter updates: `ops/slicing.py`).

distkeras runs eagerly, so control flow is plain Python over Tensors, as in
Keras's NumPy backend: `cond` runs the branch taken, loops are unrolled, and
the tape differentiates whatever ran. The functions that take Python callables
are not graph nodes (`not_an_op`): like Keras's, they are meant for layers'
`call` methods.
"""

from __future__ import annotations

import builtins
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from distkeras.backend import current_module
from distkeras.backend import primitives as P
from distkeras.backend.autodiff import Tensor, apply, convert_to_tensor, no_grad
from distkeras.backend.tree import flatten as _flatten
from distkeras.backend.tree import pack_sequence_as as _pack
from distkeras.ops.symbolic import any_symbolic, not_an_op

__all__ = (
    "associative_scan cond custom_gradient fori_loop jvp map scan switch vectorize "
    "vectorized_map while_loop"
).split()


# ---------------------------------------------------------------- argument checks
def _check_callable(fn: Any, name: str) -> None:
    if not callable(fn):
        raise TypeError(f"`{name}` should be a callable. Received: {name}={fn!r}")


def _refuse_symbolic(name: str, *values: Any) -> None:
    if any_symbolic(tuple(_flatten(list(values))), {}):
        raise ValueError(
            f"ops.{name} runs Python control flow on values, so it cannot take symbolic "
            "tensors: call it inside a layer's `call` method. "
            f"Received: {[type(v).__name__ for v in _flatten(list(values))]}"
        )


# ---------------------------------------------------------------- control flow
@not_an_op
def cond(pred: Any, true_fn: Callable, false_fn: Callable) -> Any:
    """Returns `true_fn()` if `pred` is true, else `false_fn()` (only one of them runs)."""
    _check_callable(true_fn, "true_fn")
    _check_callable(false_fn, "false_fn")
    _refuse_symbolic("cond", pred)
    p = convert_to_tensor(pred)
    if p.size != 1:
        raise ValueError(f"`pred` must be a boolean scalar. Received: pred of shape {p.shape}")
    return true_fn() if bool(p.data.reshape(())) else false_fn()


@not_an_op
def switch(index: Any, branches: Sequence[Callable], *operands: Any) -> Any:
    """Applies `branches[index](*operands)`, with `index` clamped into range."""
    if not isinstance(branches, (list, tuple)) or not branches:
        raise ValueError(f"`branches` must be a non-empty list of callables. Received: {branches}")
    for b in branches:
        _check_callable(b, "branches")
    _refuse_symbolic("switch", index)
    i = convert_to_tensor(index)
    if i.size != 1:
        raise ValueError(f"`index` must be an integer scalar. Received: index of shape {i.shape}")
    k = builtins.min(builtins.max(int(i.data.reshape(())), 0), len(branches) - 1)
    return branches[k](*operands)


@not_an_op
def while_loop(
    cond: Callable, body: Callable, loop_vars: Any, maximum_iterations: int | None = None
) -> Any:
    """Runs `loop_vars = body(*loop_vars)` while `cond(*loop_vars)` holds."""
    _check_callable(cond, "cond")
    _check_callable(body, "body")
    if maximum_iterations is not None and int(maximum_iterations) < 0:
        raise ValueError(
            f"`maximum_iterations` must be >= 0. Received: maximum_iterations={maximum_iterations}"
        )
    _refuse_symbolic("while_loop", loop_vars)
    is_tuple = isinstance(loop_vars, (list, tuple))
    state = tuple(loop_vars) if is_tuple else (loop_vars,)
    state = _pack(state, [convert_to_tensor(v) for v in _flatten(state)])
    n = 0
    while (maximum_iterations is None or n < int(maximum_iterations)) and bool(cond(*state)):
        new = body(*state)
        new = tuple(new) if isinstance(new, (list, tuple)) else (new,)
        if len(new) != len(state):
            raise ValueError(
                f"`body` must return {len(state)} loop variable(s), like `loop_vars`. "
                f"Received: {len(new)} from body={body!r}"
            )
        state = new
        n += 1
    return state if is_tuple else state[0]


@not_an_op
def fori_loop(lower: Any, upper: Any, body_fun: Callable, init_val: Any) -> Any:
    """Runs `val = body_fun(i, val)` for `i` in `range(lower, upper)`."""
    _check_callable(body_fun, "body_fun")
    _refuse_symbolic("fori_loop", lower, upper)
    lo, hi = int(convert_to_tensor(lower).data), int(convert_to_tensor(upper).data)
    val = init_val
    for i in range(lo, hi):
        val = body_fun(i, val)
    return val


def _stack_tree(ys: list) -> Any:
    """Stacks a list of equally structured outputs leaf by leaf along a new first axis."""
    leaves = [_flatten(y) for y in ys]
    stacked = [P.stack([convert_to_tensor(v) for v in col]) for col in zip(*leaves)]
    return _pack(ys[0], stacked)


@not_an_op
def scan(
    f: Callable,
    init: Any,
    xs: Any = None,
    length: int | None = None,
    reverse: bool = False,
    unroll: int | bool = 1,
) -> tuple[Any, Any]:
    """Loops `carry, y = f(carry, x)` over the leading axis of `xs`; returns (carry, stacked ys)."""
    _check_callable(f, "f")
    if isinstance(unroll, bool) is False and (not isinstance(unroll, int) or unroll < 1):
        raise ValueError(
            f"`unroll` must be a positive integer or boolean. Received: unroll={unroll}"
        )
    if xs is None and length is None:
        raise ValueError("Got no `xs` to scan over and `length` not provided.")
    _refuse_symbolic("scan", init, xs)
    xs_flat = [] if xs is None else [convert_to_tensor(v) for v in _flatten(xs)]
    n = int(length) if length is not None else xs_flat[0].shape[0]
    for x in xs_flat:
        if not x.shape or x.shape[0] != n:
            raise ValueError(
                f"Every array in `xs` needs a leading axis of length {n}. "
                f"Received: xs with shapes {[t.shape for t in xs_flat]}, length={length}"
            )
    init_flat = [convert_to_tensor(v) for v in _flatten(init)]
    carry = _pack(init, init_flat)
    ys = []
    steps = range(n - 1, -1, -1) if reverse else range(n)
    for i in steps:
        x = None if xs is None else _pack(xs, [t[i] for t in xs_flat])
        carry, y = f(carry, x)
        ys.append(
            y if y is not None else [Tensor(current_module().zeros_like(t.data)) for t in init_flat]
        )
    if reverse:
        ys.reverse()
    return carry, (_stack_tree(ys) if ys else None)


@not_an_op
def map(f: Callable, xs: Any) -> Any:
    """Applies `f` to each slice of `xs` along its leading axis and stacks the results."""
    _check_callable(f, "f")
    _, ys = scan(lambda _, x: ((), f(x)), (), xs)
    return ys


@not_an_op
def vectorized_map(function: Callable, elements: Any) -> Any:
    """Applies `function` to each slice of `elements` along axis 0 and stacks the results."""
    _check_callable(function, "function")
    _refuse_symbolic("vectorized_map", elements)
    if isinstance(elements, (list, tuple)):
        elems = [convert_to_tensor(e) for e in elements]
        outs = [function([e[i] for e in elems]) for i in range(elems[0].shape[0])]
    else:
        x = convert_to_tensor(elements)
        outs = [function(x[i]) for i in range(x.shape[0])]
    return _stack_tree(outs)


def _slice_axis(x: Tensor, start: Any, stop: Any, step: Any, axis: int) -> Tensor:
    key = (builtins.slice(None),) * axis + (builtins.slice(start, stop, step),)
    return P.getitem(x, key)


def _interleave(a: Tensor, b: Tensor, axis: int) -> Tensor:
    """[a0, b0, a1, b1, ...] along `axis`; `a` is as long as `b` or one longer."""
    extra = a.shape[axis] - b.shape[axis]
    head = _slice_axis(a, 0, b.shape[axis], None, axis) if extra else a
    pairs = P.stack([head, b], axis=axis + 1)
    shape = list(a.shape)
    shape[axis] = 2 * b.shape[axis]
    out = P.reshape(pairs, tuple(shape))
    if extra:
        out = P.concatenate([out, _slice_axis(a, -1, None, None, axis)], axis=axis)
    return out


@not_an_op
def associative_scan(f: Callable, elems: Any, reverse: bool = False, axis: int = 0) -> Any:
    """Prefix scan `[a, f(a, b), f(f(a, b), c), ...]` of an associative `f`, in O(log n) calls."""
    _check_callable(f, "f")
    _refuse_symbolic("associative_scan", elems)
    flat = [convert_to_tensor(e) for e in _flatten(elems)]
    ax = axis % flat[0].ndim if flat[0].ndim else axis
    n = flat[0].shape[ax]
    if any(e.shape[ax] != n for e in flat):
        raise ValueError(
            "Array inputs to associative_scan must have the same length along `axis`. "
            f"Received: shapes {[e.shape for e in flat]}, axis={axis}"
        )

    def combine(a: list, b: list) -> list:
        return [convert_to_tensor(v) for v in _flatten(f(_pack(elems, a), _pack(elems, b)))]

    def rec(es: list) -> list:
        m = es[0].shape[ax]
        if m < 2:
            return es
        odd = rec(
            combine(
                [_slice_axis(e, 0, -1, 2, ax) for e in es],
                [_slice_axis(e, 1, None, 2, ax) for e in es],
            )
        )
        rest = [_slice_axis(e, 2, None, 2, ax) for e in es]
        left = [_slice_axis(o, 0, -1, None, ax) for o in odd] if m % 2 == 0 else odd
        even = combine(left, rest) if rest[0].shape[ax] else rest
        even = [
            P.concatenate([_slice_axis(e, 0, 1, None, ax), r], axis=ax) for e, r in zip(es, even)
        ]
        return [_interleave(e, o, ax) for e, o in zip(even, odd)]

    if reverse:
        flat = [_slice_axis(e, None, None, -1, ax) for e in flat]
    out = rec(flat)
    if reverse:
        out = [_slice_axis(e, None, None, -1, ax) for e in out]
    return _pack(elems, out)


# ---------------------------------------------------------------- function transformations
def _call_grad_fn(grad_fn: Callable, args: tuple, upstream: Any) -> Any:
    """Calls `grad_fn` the way Keras documents: `grad(upstream)`, or, when it takes
    `upstream` as a keyword-only argument (the PyTorch style), `grad(*args, upstream=...)`."""
    try:
        param = inspect.signature(grad_fn).parameters.get("upstream")
    except (TypeError, ValueError):
        param = None
    if param is not None and param.kind is inspect.Parameter.KEYWORD_ONLY:
        return grad_fn(*args, upstream=upstream)
    return grad_fn(upstream)


def _grad_arrays(grads: Any, tensors: list, n_args: int, positions: list[int]) -> tuple:
    grads = list(grads) if isinstance(grads, (list, tuple)) else [grads]
    if len(grads) != n_args:
        raise ValueError(
            f"The gradient function of a custom_gradient must return one gradient per "
            f"argument ({n_args}). Received: {len(grads)} gradients"
        )
    res = []
    for t, pos in zip(tensors, positions):
        g = grads[pos]
        if g is None:
            res.append(None)
            continue
        g = convert_to_tensor(g).data
        g = P.sum_to(current_module().broadcast_to(g, t.shape) if g.ndim < t.ndim else g, t.shape)
        res.append(g.astype(t.data.dtype) if t.data.dtype.kind == "f" else g)
    return tuple(res)


@not_an_op
def custom_gradient(f: Callable) -> Callable:
    """Decorates `f(*args) -> (output, grad_fn)` so the tape uses `grad_fn` for its gradient."""
    _check_callable(f, "f")

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if any_symbolic(args, kwargs):  # a graph being built: the forward only
            return f(*args, **kwargs)[0]
        flat = _flatten(list(args))
        positions = [i for i, a in enumerate(flat) if isinstance(a, Tensor)]
        tensors = [flat[i] for i in positions]
        with no_grad():
            out, grad_fn = f(*args, **kwargs)
        _check_callable(grad_fn, "grad_fn")
        single = not isinstance(out, (list, tuple))
        outs = [convert_to_tensor(o) for o in ([out] if single else out)]
        # One packed primitive output (all outputs, flattened), then differentiable slices.
        dtype = outs[0].data.dtype
        if any(o.data.dtype != dtype for o in outs):
            raise ValueError(
                "custom_gradient: the outputs of a function with several outputs must share "
                f"one dtype. Received: {[o.dtype for o in outs]}"
            )
        sizes = [o.size for o in outs]
        bounds = np.cumsum([0, *sizes])

        def packed_prim(*arrays):
            packed = current_module().concatenate([o.data.reshape(-1) for o in outs])

            def vjp(g, needs):
                ups = [
                    Tensor(g[bounds[i] : bounds[i + 1]].reshape(o.shape))
                    for i, o in enumerate(outs)
                ]
                with no_grad():
                    grads = _call_grad_fn(grad_fn, args, ups[0] if single else type(out)(ups))
                return _grad_arrays(grads, tensors, len(flat), positions)

            return packed, vjp

        packed = apply(packed_prim, *tensors)
        pieces = [
            P.reshape(
                P.getitem(packed, builtins.slice(int(bounds[i]), int(bounds[i + 1]))), o.shape
            )
            for i, o in enumerate(outs)
        ]
        return pieces[0] if single else type(out)(pieces)

    wrapper.__name__ = getattr(f, "__name__", "custom_gradient")
    wrapper.__doc__ = getattr(f, "__doc__", None)
    wrapper.__wrapped__ = f
    return wrapper


def _core_dims(signature: str) -> list[tuple]:
    """The input core dimensions of a generalized ufunc signature like "(m,n),(n)->(m)"."""
    if not isinstance(signature, str) or signature.count("->") != 1:
        raise ValueError(f"Invalid generalized ufunc signature. Received: signature={signature!r}")
    ins = signature.split("->")[0].replace(" ", "")
    return [tuple(d for d in g.split(",") if d) for g in ins[1:-1].split("),(")] if ins else []


@not_an_op
def vectorize(pyfunc: Callable, *, excluded: Any = None, signature: str | None = None) -> Callable:
    """Turns `pyfunc` on scalars (or on `signature`'s core shapes) into a broadcasting function."""
    if not callable(pyfunc):
        raise ValueError(f"Expected argument `pyfunc` to be a callable. Received: pyfunc={pyfunc}")
    excluded = set(excluded or ())
    core_in = None if signature is None else _core_dims(signature)

    def vectorized(*args: Any, **kwargs: Any) -> Any:
        vec = [i for i in range(len(args)) if i not in excluded]
        core = [()] * len(vec) if core_in is None else core_in
        if len(core) != len(vec):
            raise ValueError(
                f"signature={signature!r} names {len(core)} inputs. "
                f"Received: {len(vec)} vectorized arguments"
            )
        flat, loops, sizes = {}, [], {}
        for i, names in zip(vec, core):
            t = flat[i] = convert_to_tensor(args[i])
            cut = t.ndim - len(names)
            if cut < 0 or any(sizes.setdefault(k, d) != d for k, d in zip(names, t.shape[cut:])):
                raise ValueError(
                    f"Argument {i} does not fit the core dimensions {names} of "
                    f"signature={signature!r} (sizes {sizes}). Received: shape {t.shape}"
                )
            loops.append(t.shape[:cut])
        loop = np.broadcast_shapes(*loops)
        n = int(np.prod(loop))
        if n == 0:
            raise ValueError(f"vectorize cannot infer outputs from empty inputs. Received: {loop}")
        for i, names in zip(vec, core):
            tail = flat[i].shape[flat[i].ndim - len(names) :]
            flat[i] = P.reshape(P.broadcast_to(flat[i], loop + tail), (n, *tail))
        outs = [
            pyfunc(*[flat[i][j] if i in flat else a for i, a in enumerate(args)], **kwargs)
            for j in range(n)
        ]
        stacked = _stack_tree(outs)
        return _pack(stacked, [P.reshape(s, loop + s.shape[1:]) for s in _flatten(stacked)])

    return vectorized


@not_an_op
def jvp(fun: Callable, primals: Any, tangents: Any, has_aux: bool = False) -> tuple:
    """Returns `(fun(*primals), J @ tangents)` (and `aux` when `has_aux`), computed exactly.

    distkeras differentiates in reverse mode only, so the product is assembled
    from one reverse pass per output element: exact, but meant for small outputs.
    """
    from distkeras.backend.autodiff import GradientTape, backward  # noqa: PLC0415

    _check_callable(fun, "fun")
    if not isinstance(primals, (list, tuple)) or not isinstance(tangents, (list, tuple)):
        raise ValueError(
            "`primals` and `tangents` must be tuples or lists of arguments. "
            f"Received: primals={type(primals).__name__}, tangents={type(tangents).__name__}"
        )
    p_flat = [convert_to_tensor(p) for p in _flatten(primals)]
    t_flat = [convert_to_tensor(t) for t in _flatten(tangents)]
    if len(p_flat) != len(t_flat) or any(p.shape != t.shape for p, t in zip(p_flat, t_flat)):
        raise ValueError(
            "`tangents` must have the structure and shapes of `primals`. Received: primal "
            f"shapes {[p.shape for p in p_flat]}, tangent shapes {[t.shape for t in t_flat]}"
        )
    leaves = [Tensor(p.data, requires_grad=p.data.dtype.kind == "f") for p in p_flat]
    with GradientTape():
        res = fun(*_pack(list(primals), leaves))
    out, aux = res if has_aux else (res, None)
    xp = current_module()
    t_outs = []
    for o in _flatten(out):
        o = convert_to_tensor(o)
        t = xp.zeros(o.shape, dtype=o.data.dtype)
        if o.requires_grad:
            t_view = t.reshape(-1)
            for e in range(o.size):
                seed = xp.zeros(o.size, dtype=o.data.dtype)
                seed[e] = 1
                grads = backward(o, seed.reshape(o.shape))
                t_view[e] = builtins.sum(
                    float((grads[id(leaf)] * tan.data).sum())
                    for leaf, tan in zip(leaves, t_flat)
                    if id(leaf) in grads
                )
        t_outs.append(Tensor(t))
    primals_out = _pack(out, [Tensor(convert_to_tensor(o).data) for o in _flatten(out)])
    tangents_out = _pack(out, t_outs)
    return (primals_out, tangents_out, aux) if has_aux else (primals_out, tangents_out)
