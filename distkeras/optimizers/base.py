"""The optimizer base class (Keras 3 semantics) with a fused flat-buffer fast path.

A subclass declares its per-variable state in `build` with
`add_optimizer_variables`, and its arithmetic in two hooks:

- `_prepare_step(lr, step)`: host-side scalars for this step (once per step);
- `_update(param, grad, slots, scratch, coef)`: in-place ufunc calls (`out=`)
  on raw arrays. It must be elementwise, so it can run on one variable, on a
  whole fused buffer, or on chunks of it, with bitwise-identical results.

`apply(grads, variables)` runs `_update` once per variable; `apply_flat(buffer)`
runs it once over a `FlatBuffer`'s flat parameter and gradient arrays. The
per-variable slot Variables then view into flat slot arrays, so
`optimizer.variables` still lists them one by one for checkpoints.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from typing import Any

from distkeras.backend import current_module, floatx
from distkeras.backend.autodiff import Tensor, Variable
from distkeras.optimizers import schedules
from distkeras.optimizers._flat import FlatState, Segment, UpdatePipeline, set_threads
from distkeras.optimizers._state import OptimizerState
from distkeras.utils.naming import auto_name


def _data(x: Any) -> Any:
    return x.data if isinstance(x, Tensor) else x


def check_range(
    name: str,
    value: Any,
    low: float | None = 0.0,
    high: float | None = None,
    low_closed: bool = True,
    high_closed: bool = False,
) -> None:
    """Raises ValueError unless `value` is a number in the given interval.

    The error names the argument, the interval and the received value, e.g.
    "Argument `beta_1` must be in the interval [0, 1). Received: beta_1=1.5".

    Args:
        name: The argument name.
        value: The received value.
        low: Lower bound (None: unbounded).
        high: Upper bound (None: unbounded).
        low_closed: Whether `low` itself is allowed.
        high_closed: Whether `high` itself is allowed.
    """
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value == value
    if ok and low is not None:
        ok = value >= low if low_closed else value > low
    if ok and high is not None:
        ok = value <= high if high_closed else value < high
    if not ok:
        lo = "(-inf" if low is None else ("[" if low_closed else "(") + f"{low:g}"
        hi = "inf)" if high is None else f"{high:g}" + ("]" if high_closed else ")")
        raise ValueError(
            f"Argument `{name}` must be in the interval {lo}, {hi}. Received: {name}={value!r}"
        )


class Optimizer(OptimizerState, UpdatePipeline):
    """Base class of all optimizers, as `keras.optimizers.Optimizer`.

    Args:
        learning_rate: A float, a `LearningRateSchedule`, or a callable taking
            no argument.
        weight_decay: If set, each variable is decayed by
            `var -= var * weight_decay * lr` before the update (decoupled).
        clipnorm: Clip each variable's gradient to this L2 norm.
        clipvalue: Clip gradients elementwise to `[-clipvalue, clipvalue]`.
        global_clipnorm: Clip all gradients together to this global L2 norm.
        use_ema: Keep an exponential moving average of the variables.
        ema_momentum: Momentum of that average.
        ema_overwrite_frequency: Overwrite the variables with their average
            every this many steps (None: only in `finalize_variable_values`).
        loss_scale_factor: Gradients are divided by it before use.
        gradient_accumulation_steps: Update once every this many calls, with
            the mean of the accumulated gradients.
        name: Name of the optimizer (used in variable paths).
    """

    _num_scratch: int = 0  # scratch arrays `_update` needs, shaped like the parameter

    def __init__(
        self,
        learning_rate: Any,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str | None = None,
        **kwargs: Any,
    ):
        if kwargs.pop("decay", None) is not None:
            warnings.warn("Argument `decay` is no longer supported and will be ignored.")
        if kwargs:
            raise ValueError(f"Argument(s) not recognized: {kwargs}")
        self.name = name or auto_name(self.__class__.__name__)
        clips = {"clipnorm": clipnorm, "clipvalue": clipvalue, "global_clipnorm": global_clipnorm}
        if sum(v is not None for v in clips.values()) > 1:
            raise ValueError(
                "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. "
                f"Received: clipnorm={clipnorm}, clipvalue={clipvalue}, "
                f"global_clipnorm={global_clipnorm}"
            )
        for key, value in clips.items():
            if value is not None and not float(value) > 0:
                raise ValueError(f"Argument `{key}` must be > 0. Received: {key}={value}")
        if gradient_accumulation_steps is not None and not gradient_accumulation_steps >= 2:
            raise ValueError(
                "`gradient_accumulation_steps` must be an integer >= 2. "
                f"Received: gradient_accumulation_steps={gradient_accumulation_steps}"
            )
        if use_ema:
            if not 0 <= ema_momentum <= 1:
                raise ValueError(
                    "`ema_momentum` must be in the range [0, 1]. "
                    f"Received: ema_momentum={ema_momentum}"
                )
            if ema_overwrite_frequency is not None and (
                not isinstance(ema_overwrite_frequency, int) or ema_overwrite_frequency < 1
            ):
                raise ValueError(
                    "`ema_overwrite_frequency` must be an integer >= 1 or None. "
                    f"Received: ema_overwrite_frequency={ema_overwrite_frequency}"
                )
        if weight_decay is not None:
            check_range("weight_decay", weight_decay)
        if loss_scale_factor is not None:
            check_range("loss_scale_factor", loss_scale_factor, low_closed=False)
        self.weight_decay = weight_decay
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.global_clipnorm = global_clipnorm
        self.use_ema = bool(use_ema)
        self.ema_momentum = ema_momentum
        self.ema_overwrite_frequency = ema_overwrite_frequency
        self.loss_scale_factor = loss_scale_factor
        self.gradient_accumulation_steps = gradient_accumulation_steps

        self.built = False
        self._variables: list[Variable] = []
        self._trainable_variables: list[Variable] = []
        self._index: dict[int, int] = {}
        self._slot_lists: list[list[Variable]] = []  # the slots `_update` receives, in order
        self._ema_slots: list[Variable] = []
        self._accum_slots: list[Variable] = []
        self._scratch: dict[int, list] = {}
        self._flat: dict[int, FlatState] = {}
        self._wd_exclude_ids: set[int] = set()
        self._wd_exclude_pattern: re.Pattern | None = None
        self._wd_cache: dict[int, bool] = {}
        # Set by the trainer: syncs gradients across data-parallel ranks in `apply`.
        self.gradient_sync: Any = None

        self._iterations = Variable(0, dtype="int64", trainable=False, name="iteration")
        self._iterations.path = f"{self.name}/iteration"
        self._variables.append(self._iterations)
        if isinstance(learning_rate, schedules.LearningRateSchedule) or callable(learning_rate):
            self._learning_rate = learning_rate
        else:
            self._learning_rate = self._make_lr_variable(learning_rate)
            self._variables.append(self._learning_rate)

    # ------------------------------------------------------------ properties
    def _make_lr_variable(self, value: Any) -> Variable:
        v = _data(value)
        if isinstance(v, bool) or not isinstance(v, (int, float)) and getattr(v, "ndim", 1) != 0:
            raise ValueError(
                "Argument `learning_rate` should be float, or an instance of "
                "LearningRateSchedule, or a callable (that takes in the current iteration "
                "value and returns the corresponding learning rate value). "
                f"Received: learning_rate={value}"
            )
        check_range("learning_rate", float(v))
        var = Variable(float(v), dtype=floatx(), trainable=False, name="learning_rate")
        var.path = f"{self.name}/learning_rate"
        return var

    @property
    def iterations(self) -> Variable:
        """Number of update steps applied so far (an int64 Variable)."""
        return self._iterations

    @property
    def learning_rate(self) -> Any:
        """The current learning rate: the rate Variable, or the schedule's value now."""
        lr = self._learning_rate
        if isinstance(lr, Variable):
            return lr
        if isinstance(lr, schedules.LearningRateSchedule):
            return lr(int(self._iterations.data))
        return lr()

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        old = self._learning_rate
        if isinstance(value, schedules.LearningRateSchedule) or callable(value):
            self._learning_rate = value
            if isinstance(old, Variable):
                self._variables.remove(old)
            return
        if isinstance(old, schedules.LearningRateSchedule):
            raise TypeError(
                "This optimizer was created with a `LearningRateSchedule` object as its "
                "`learning_rate` constructor argument, hence its learning rate is not settable. "
                "If you need the learning rate to be settable, you should instantiate the "
                "optimizer with a float `learning_rate` argument."
            )
        if isinstance(old, Variable):
            check_range("learning_rate", float(_data(value)))
            old.assign(float(_data(value)))
        else:
            self._learning_rate = self._make_lr_variable(value)
            self._variables.insert(1, self._learning_rate)

    def _current_lr(self) -> float:
        lr = self._learning_rate
        if isinstance(lr, Variable):
            return float(lr.data)
        if isinstance(lr, schedules.LearningRateSchedule):
            return float(_data(lr(int(self._iterations.data))))
        return float(_data(lr()))

    @property
    def variables(self) -> list[Variable]:
        """iterations, learning rate (when a Variable), then every slot, in build order."""
        self._check_not_sharded()
        return list(self._variables)

    # -------------------------------------------------------------- building
    def build(self, var_list: Sequence[Variable]) -> None:
        """Creates the optimizer state for `var_list` (subclasses add their slots).

        Args:
            var_list: The trainable variables this optimizer will update.
        """
        var_list = list(var_list)
        for i, v in enumerate(var_list):
            self._index[id(v)] = i
        self._trainable_variables = var_list
        names = (["average"] if self.use_ema else []) + (
            ["gradient_accumulator"] if self.gradient_accumulation_steps else []
        )
        if names:
            created = self._create_slots(var_list, names, ["zeros"] * len(names))
            created = dict(zip(names, created))
            self._ema_slots = created.get("average", [])
            self._accum_slots = created.get("gradient_accumulator", [])
        self.built = True

    def add_variable(
        self,
        shape: Sequence[int],
        initializer: Any = "zeros",
        dtype: Any = None,
        aggregation: str = "mean",
        name: str | None = None,
    ) -> Variable:
        """Creates and tracks a non-trainable optimizer Variable.

        Args:
            shape: Shape of the variable.
            initializer: 'zeros', 'ones', a number, or a callable `(shape, dtype)`.
            dtype: Dtype (the default float type when omitted).
            aggregation: Kept for Keras compatibility; optimizer state is
                identical on every rank.
            name: Name of the variable.
        """
        dtype = dtype or floatx()
        shape = tuple(shape)
        from distkeras.initializers import state_variable  # noqa: PLC0415

        var = state_variable(initializer, shape, dtype, name)
        var.path = f"{self.name}/{var.name}"
        self._variables.append(var)
        return var

    def add_variable_from_reference(
        self, reference_variable: Variable, name: str | None = None, initializer: Any = "zeros"
    ) -> Variable:
        """Adds a variable shaped like `reference_variable`, named `<path>_<name>`."""
        ref_name = getattr(reference_variable, "path", None) or str(reference_variable.name)
        full = ref_name.replace("/", "_").replace(":", "_") + "_" + (name or "var")
        return self.add_variable(
            reference_variable.shape, initializer, dtype=reference_variable.dtype, name=full
        )

    def _create_slots(self, var_list, names, inits) -> list[list[Variable]]:
        out: list[list[Variable]] = [[] for _ in names]
        for v in var_list:  # interleaved per variable, as Keras
            for k, (n, init) in enumerate(zip(names, inits)):
                out[k].append(self.add_variable_from_reference(v, n, init))
        return out

    def add_optimizer_variables(
        self, var_list: Sequence[Variable], name: str | Sequence[str], initializer: Any = "zeros"
    ) -> Any:
        """Adds one slot per variable for each name; `_update` gets them in this order.

        Returns:
            A list of slot Variables for one name, a tuple of lists for several.
        """
        names = [name] if isinstance(name, str) else list(name)
        inits = (
            list(initializer)
            if isinstance(initializer, (list, tuple))
            else [initializer] * len(names)
        )
        if len(inits) != len(names):
            raise ValueError(
                "The number of provided names must match the number of provided initializers. "
                f"Received: name={name}, initializer={initializer}"
            )
        created = self._create_slots(list(var_list), names, inits)
        self._slot_lists.extend(created)
        return created[0] if isinstance(name, str) else tuple(created)

    def exclude_from_weight_decay(
        self, var_list: Sequence[Variable] | None = None, var_names: Sequence[str] | None = None
    ) -> None:
        """Excludes variables (given, or whose name contains one of `var_names`) from decay."""
        if self.built:
            raise ValueError(
                "`exclude_from_weight_decay()` can only be configured before the optimizer "
                "is built."
            )
        self._wd_exclude_ids = {id(v) for v in var_list or ()}
        self._wd_exclude_pattern = re.compile("|".join(set(var_names))) if var_names else None
        self._wd_cache = {}

    def _use_weight_decay(self, variable: Variable) -> bool:
        key = id(variable)
        if key not in self._wd_cache:
            use = key not in self._wd_exclude_ids and not (
                self._wd_exclude_pattern is not None
                and self._wd_exclude_pattern.search(variable.name) is not None
            )
            self._wd_cache[key] = use
        return self._wd_cache[key]

    # ---------------------------------------------------------- subclass hooks
    def _prepare_step(self, lr: float, step: int) -> Any:
        """Host-side scalars for step `step` (1-based) at learning rate `lr`."""
        return lr

    def _update(self, param, grad, slots: list, scratch: list, coef: Any) -> None:
        """Updates `param` and `slots` in place from `grad` (elementwise, `out=` ufuncs)."""
        raise NotImplementedError(f"{self.__class__.__name__}._update() must be implemented.")

    def _n_scratch(self) -> int:
        extra = self.clipnorm or self.global_clipnorm or self.use_ema
        return max(self._num_scratch, 1 if extra or self.weight_decay is not None else 0)

    # ---------------------------------------------------------------- applying
    def apply_gradients(self, grads_and_vars: Sequence[tuple[Any, Variable]]) -> Variable:
        """Applies `(gradient, variable)` pairs; returns `iterations`."""
        grads, variables = zip(*grads_and_vars)
        self.apply(list(grads), list(variables))
        return self._iterations

    def apply(self, grads: Sequence[Any], trainable_variables: Sequence[Variable] | None = None):
        """Updates variables from their gradients (Tensors, arrays, or None to skip).

        In a data-parallel `fit`, the trainer sets `gradient_sync` (see
        `distkeras.distributed.data_parallel`): the gradients of all ranks
        are averaged here, weighted by each rank's share of the global batch,
        before the update, so a custom `train_step` needs no change.

        Args:
            grads: One gradient per variable.
            trainable_variables: The variables; the ones the optimizer was built
                with when omitted. The first call builds the optimizer.
        """
        grads = list(grads)
        if not grads:
            return
        variables = self._prepare_variables(grads, trainable_variables)
        sync = self.gradient_sync
        if sync is not None:
            sync.apply(self, grads, variables)
        else:
            self._apply_local(grads, variables)

    def _apply_local(self, grads: list, variables: list) -> None:
        """The update from this process's gradients (already synchronized across ranks)."""
        if not grads:  # a model with no trainable weights: a no-op, as in Keras
            return
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        if not pairs:
            raise ValueError("No gradients provided for any variable.")
        if len(pairs) < len(grads):
            missing = [v.name for g, v in zip(grads, variables) if g is None]
            warnings.warn(
                f"Gradients do not exist for variables {missing} when minimizing the loss. "
                "If using `model.compile()`, did you forget to provide a `loss` argument?"
            )
        xp = current_module()
        # The pipeline works in place: copy a gradient it would change, or one
        # in another dtype; otherwise it is only read.
        mutates = bool(
            self.loss_scale_factor is not None
            or self.gradient_accumulation_steps
            or self.clipnorm
            or self.global_clipnorm
            or self.clipvalue
        )
        segments, updated = [], []
        for g, v in pairs:
            i = self._index[id(v)]
            p = v.data
            g = _data(g)
            if type(g) is not type(p):
                g = xp.asarray(g)
            if g.shape != p.shape:
                raise ValueError(
                    f"Gradient shape {tuple(g.shape)} does not match variable {v.path!r} of "
                    f"shape {tuple(p.shape)}."
                )
            if g.dtype != p.dtype:
                g = g.astype(p.dtype)
            elif mutates:
                g = g.copy()
            s = self._scratch_for(i)
            tmp = s[0] if s else None
            segments.append(
                Segment(
                    p,
                    g,
                    [lst[i].data for lst in self._slot_lists],
                    s,
                    self._accum_slots[i].data if self._accum_slots else None,
                    [(g, tmp)],
                    [(p, tmp)] if self._use_weight_decay(v) else (),
                )
            )
            updated.append(self._trainable_variables[i])
        self._pipeline(segments, updated)

    def _prepare_variables(self, grads, trainable_variables) -> list[Variable]:
        if trainable_variables is None:
            if not self.built:
                raise ValueError(
                    "When passing `grads` without `variables`, the optimizer must already be "
                    "built on a list of variables. Call `optimizer.build(trainable_variables)` "
                    "first."
                )
            if len(grads) != len(self._trainable_variables):
                raise ValueError(
                    "When passing `grads` as a list of gradient tensors, the gradients must match "
                    f"`optimizer.variables` one-to-one. Received a list of {len(grads)} "
                    f"gradients, but the optimizer is tracking {len(self._trainable_variables)} "
                    "trainable variables."
                )
            return self._trainable_variables
        variables = list(trainable_variables)
        if len(variables) != len(grads):
            raise ValueError(
                f"Received {len(grads)} gradients for {len(variables)} variables; "
                "they must match one-to-one."
            )
        if not self.built:
            self.build(variables)
        self._check_known(variables)
        return variables

    def _check_known(self, variables) -> None:
        for v in variables:
            if id(v) not in self._index:
                raise ValueError(
                    f"Unknown variable: {v}. This optimizer can only be called for the variables "
                    "it was originally built with. When working with a new set of variables, "
                    "you should recreate a new optimizer instance."
                )

    def _scratch_for(self, i: int) -> list:
        s = self._scratch.get(i)
        if s is None:
            p = self._trainable_variables[i].data
            xp = current_module()
            s = [xp.empty(p.shape, dtype=p.dtype) for _ in range(self._n_scratch())]
            self._scratch[i] = s
        return s

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} name={self.name!r}>"


def set_update_threads(n: int | None) -> None:
    """Sets how many threads split the flat-buffer update (NumPy only; default 1).

    None reads the `DISTKERAS_OPTIMIZER_THREADS` environment variable. Results
    do not depend on it: the update is elementwise.
    """
    set_threads(n)
