"""20-step trajectories on a fixed quadratic: every optimizer, alone and with the shared
arguments (clipping, weight decay, EMA, gradient accumulation, loss scaling), against
NumPy float64 re-implementations of Keras 3's formulas, to 1e-6 relative. Also the
hyper-parameter validation of every optimizer."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from distkeras import optimizers
from distkeras.backend import Variable
from distkeras.backend.buffers import FlatBuffer
from tests.test_optimizers import CASES, ref_sgd

STEPS = 20
LR = 0.05

# f(w, W) = 0.5 (w - c)^T A (w - c) + 0.5 sum(d * (W - C)^2): a coupled and a diagonal part.
_RNG = np.random.default_rng(42)
_Q, _ = np.linalg.qr(_RNG.normal(size=(4, 4)))
A = _Q @ np.diag([0.3, 0.8, 1.5, 2.5]) @ _Q.T
C_VEC = _RNG.normal(size=4)
D_MAT = _RNG.uniform(0.2, 2.0, size=(3, 2))
C_MAT = _RNG.normal(size=(3, 2))
START = [_RNG.normal(size=4), _RNG.normal(size=(3, 2))]


def quadratic_grads(params):
    w, W = params
    return [A @ (w - C_VEC), D_MAT * (W - C_MAT)]


def _lr32(x: float) -> float:
    return float(np.float32(x))  # the learning rate lives in a floatx (float32) Variable


def reference_trajectory(ref, steps=STEPS, lr=LR, **shared):
    """Keras 3's `apply` in NumPy: loss scale, accumulation, clipping, decay, update, EMA."""
    lr = _lr32(lr)
    params = [p.copy() for p in START]
    shared_prod = {0: 1.0}  # Nadam's running product is shared by all variables
    states = [{"prod": shared_prod} for _ in params]
    acc = [np.zeros_like(p) for p in params]
    avg = [np.zeros_like(p) for p in params]
    out = []
    for it in range(steps):
        t = it + 1
        grads = quadratic_grads(params)
        if shared.get("loss_scale_factor"):
            grads = [g / shared["loss_scale_factor"] for g in grads]
        update = True
        k = shared.get("gradient_accumulation_steps")
        if k:
            if t % k:
                acc = [a + g for a, g in zip(acc, grads)]
                update = False
            else:
                grads = [(g + a) / k for g, a in zip(grads, acc)]
                acc = [np.zeros_like(a) for a in acc]
        if update:
            if shared.get("clipnorm"):
                c = shared["clipnorm"]
                grads = [g * c / max(np.sqrt((g * g).sum()), c) for g in grads]
            elif shared.get("global_clipnorm"):
                c = shared["global_clipnorm"]
                norm = math.sqrt(sum((g * g).sum() for g in grads))
                grads = [g * c * min(1 / norm, 1 / c) for g in grads]
            elif shared.get("clipvalue"):
                c = shared["clipvalue"]
                grads = [np.clip(g, -c, c) for g in grads]
            wd = shared.get("weight_decay")
            if wd is not None:
                params = [p - p * wd * lr for p in params]
            params = [ref(p, g, s, t, lr) for p, g, s in zip(params, grads, states)]
        if shared.get("use_ema"):
            mom = shared.get("ema_momentum", 0.99) if it != 0 else 0.0
            avg = [mom * a + (1 - mom) * p for a, p in zip(avg, params)]
            freq = shared.get("ema_overwrite_frequency")
            if freq and t % freq == 0:
                params = [a.copy() for a in avg]
        out.append(([p.copy() for p in params], [a.copy() for a in avg]))
    return out


def run_trajectory(cls, kwargs, steps=STEPS, lr=LR):
    variables = [Variable(p.copy(), dtype="float64") for p in START]
    opt = cls(learning_rate=lr, **kwargs)
    out = []
    for _ in range(steps):
        grads = quadratic_grads([v.numpy() for v in variables])
        opt.apply(grads, variables)
        ema = [s.numpy().copy() for s in opt._ema_slots]
        out.append(([v.numpy().copy() for v in variables], ema))
    return opt, out


def _assert_trajectories_match(got, expected, ema=False):
    for step, ((p_got, a_got), (p_exp, a_exp)) in enumerate(zip(got, expected), start=1):
        for g, e in zip(p_got, p_exp):
            np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-12, err_msg=f"step {step}")
        if ema:
            for g, e in zip(a_got, a_exp):
                np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-12, err_msg=f"ema {step}")


def test_cases_cover_every_optimizer():
    covered = {cls for cls, _, _ in CASES.values()}
    assert covered == set(optimizers.ALL_OBJECTS) - {optimizers.Optimizer}


@pytest.mark.parametrize("case", sorted(CASES))
def test_quadratic_trajectory_matches_formula(case):
    cls, kwargs, ref = CASES[case]
    opt, got = run_trajectory(cls, kwargs)
    expected = reference_trajectory(ref)  # the case's own arguments live in `ref`
    _assert_trajectories_match(got, expected)
    assert int(opt.iterations) == STEPS
    moved = np.abs(got[-1][0][0] - START[0]).max()
    assert moved > 1e-3  # the trajectory went somewhere


SHARED = {
    "clipnorm": {"clipnorm": 0.5},
    "clipvalue": {"clipvalue": 0.2},
    "global_clipnorm": {"global_clipnorm": 0.6},
    "weight_decay": {"weight_decay": 0.1},
    "use_ema": {"use_ema": True, "ema_momentum": 0.8},
    "ema_overwrite": {"use_ema": True, "ema_momentum": 0.7, "ema_overwrite_frequency": 4},
    "accumulation": {"gradient_accumulation_steps": 3},
    "loss_scale_factor": {"loss_scale_factor": 64.0},
}
# Every shared argument with every optimizer family (one representative config each).
FAMILIES = ["sgd_momentum", "adam", "adam_amsgrad", "rmsprop_momentum_centered", "adagrad",
            "adadelta", "adamax", "nadam", "lion", "ftrl_regularized"]  # fmt: skip


@pytest.mark.parametrize("shared", sorted(SHARED))
@pytest.mark.parametrize("case", FAMILIES)
def test_shared_arguments_follow_keras(case, shared):
    cls, kwargs, ref = CASES[case]
    extra = SHARED[shared]
    _, got = run_trajectory(cls, {**kwargs, **extra})
    expected = reference_trajectory(ref, **extra)
    _assert_trajectories_match(got, expected, ema=extra.get("use_ema", False))


def test_adamw_is_adam_with_weight_decay():
    _, got = run_trajectory(optimizers.AdamW, {"weight_decay": 0.05})
    _, adam = run_trajectory(optimizers.Adam, {"weight_decay": 0.05})
    _assert_trajectories_match(got, [(p, []) for p, _ in adam])


def test_learning_rate_set_mid_trajectory():
    _, got = run_trajectory(optimizers.SGD, {"momentum": 0.5}, steps=5)
    variables = [Variable(p.copy(), dtype="float64") for p in START]
    opt = optimizers.SGD(learning_rate=LR, momentum=0.5)
    for step in range(8):
        if step == 5:
            opt.learning_rate = 0.01
        opt.apply(quadratic_grads([v.numpy() for v in variables]), variables)
        if step == 4:
            _assert_trajectories_match([([v.numpy() for v in variables], [])], [got[-1]])
    ref = ref_sgd(0.5)
    params = [p.copy() for p in START]
    states = [{}, {}]
    for t in range(1, 9):
        lr = _lr32(LR if t <= 5 else 0.01)
        params = [ref(p, g, s, t, lr) for p, g, s in zip(params, quadratic_grads(params), states)]
    _assert_trajectories_match([([v.numpy() for v in variables], [])], [(params, [])])


# ---------------------------------------------------------------- bad hyper-parameters
BAD = [
    (optimizers.SGD, "learning_rate", -0.1),
    (optimizers.Adam, "learning_rate", -1e-3),
    (optimizers.Adam, "beta_1", 1.0),
    (optimizers.Adam, "beta_2", -0.1),
    (optimizers.Adam, "epsilon", -1e-7),
    (optimizers.AdamW, "beta_1", 1.5),
    (optimizers.AdamW, "weight_decay", -0.01),
    (optimizers.Adamax, "beta_1", 1.2),
    (optimizers.Adamax, "beta_2", 1.0),
    (optimizers.Nadam, "beta_1", -0.5),
    (optimizers.Nadam, "beta_2", 2.0),
    (optimizers.RMSprop, "rho", 1.0),
    (optimizers.RMSprop, "momentum", -0.1),
    (optimizers.Adagrad, "initial_accumulator_value", -0.1),
    (optimizers.Adadelta, "rho", 1.5),
    (optimizers.Lion, "beta_1", 0.0),
    (optimizers.Lion, "beta_2", 1.0),
    (optimizers.Ftrl, "learning_rate_power", 0.5),
    (optimizers.Ftrl, "initial_accumulator_value", -1.0),
    (optimizers.Ftrl, "l1_regularization_strength", -0.1),
    (optimizers.Ftrl, "l2_regularization_strength", -0.1),
    (optimizers.Ftrl, "l2_shrinkage_regularization_strength", -0.1),
    (optimizers.SGD, "momentum", 1.5),
    (optimizers.SGD, "clipnorm", -1.0),
    (optimizers.SGD, "loss_scale_factor", 0.0),
    (optimizers.SGD, "gradient_accumulation_steps", 1),
]


@pytest.mark.parametrize("cls, argument, value", BAD, ids=lambda x: str(getattr(x, "__name__", x)))
def test_invalid_hyper_parameter_names_argument_and_value(cls, argument, value):
    with pytest.raises(ValueError, match=re.escape(f"{argument}={value}")) as err:
        cls(**{argument: value})
    assert f"`{argument}`" in str(err.value)


def test_setting_a_negative_learning_rate_raises():
    opt = optimizers.Adam()
    with pytest.raises(ValueError, match=re.escape("learning_rate=-0.5")):
        opt.learning_rate = -0.5


@pytest.mark.parametrize("cls", sorted(set(optimizers.ALL_OBJECTS) - {optimizers.Optimizer},
                                       key=lambda c: c.__name__))  # fmt: skip
def test_every_optimizer_by_name_and_round_trip(cls):
    for name in (cls.__name__, cls.__name__.lower()):
        assert type(optimizers.get(name)) is cls
    opt = cls(learning_rate=0.3)
    restored = optimizers.deserialize(optimizers.serialize(opt))
    assert type(restored) is cls and restored.get_config() == opt.get_config()


# ---------------------------------------------------------------- Lion against Keras 3
def _lion_start():
    return [np.linspace(-1.0, 1.0, 4), np.arange(6.0).reshape(2, 3) * 0.3 - 0.7]


def _lion_grads(t):
    return [
        np.cos(np.arange(4) * 1.7 + t * 2.3) * (1 + 0.5 * t),
        np.sin(np.arange(6).reshape(2, 3) * 0.9 - t * 1.9) * (2 - 0.3 * t),
    ]


# Keras 3.15.1 (jax backend): keras.optimizers.Lion(learning_rate=0.1, beta_1, beta_2)
# .apply_gradients over float32 keras.Variables built from _lion_start(), with _lion_grads(t)
# (cast to float32) at steps t = 0..5; each row is both variables, flattened, after a step.
# Swapping the betas (sign(m * (1 - beta_1) + g * beta_1)) changes 6 entries of the default
# run and 19 of the (0.3, 0.8) run.
KERAS_LION = {
    (0.9, 0.99): [
        [-1.1, -0.2333333, 0.4333333, 0.9, -0.7, -0.5, -0.2, 0.1, 0.6, 0.9],
        [-1, -0.1333334, 0.3333333, 0.8, -0.6, -0.4, -0.3, 0, 0.5, 0.8],
        [-0.9, -0.2333333, 0.4333333, 0.9, -0.7, -0.3, -0.2, 0.1, 0.6, 0.7],
        [-1, -0.1333334, 0.5333334, 0.8, -0.8, -0.4, -0.3, 0.2, 0.7, 0.8],
        [-0.9, -0.03333335, 0.4333334, 0.9, -0.7, -0.3, -0.4, 0.1, 0.6, 0.9],
        [-1, -0.1333334, 0.5333334, 1, -0.6, -0.2, -0.3, 0.2, 0.5, 0.8],
    ],
    (0.3, 0.8): [
        [-1.1, -0.2333333, 0.4333333, 0.9, -0.7, -0.5, -0.2, 0.1, 0.6, 0.9],
        [-1, -0.1333334, 0.3333333, 0.8, -0.6, -0.4, -0.1, 0, 0.5, 0.8],
        [-0.9, -0.2333333, 0.4333333, 0.9, -0.7, -0.3, 0, 0.1, 0.6, 0.7],
        [-1, -0.1333334, 0.5333334, 0.8, -0.8, -0.4, -0.1, 0.2, 0.7, 0.8],
        [-0.9, -0.03333335, 0.4333334, 0.9, -0.7, -0.3, -0.2, 0.1, 0.6, 0.9],
        [-1, -0.1333334, 0.5333334, 1, -0.6, -0.2, -0.1, 0.2, 0.5, 0.8],
    ],
}


@pytest.mark.parametrize("path", ["apply", "apply_flat"])
@pytest.mark.parametrize("betas", sorted(KERAS_LION))
def test_lion_trajectory_matches_keras(betas, path):
    """Keras 3's Lion: w -= lr * sign(beta_1 * m + (1 - beta_1) * g); m = beta_2 * m + ..."""
    variables = [Variable(p.astype("float32")) for p in _lion_start()]
    opt = optimizers.Lion(learning_rate=0.1, beta_1=betas[0], beta_2=betas[1])
    buf = FlatBuffer(variables) if path == "apply_flat" else None
    for t, expected in enumerate(KERAS_LION[betas]):
        grads = [g.astype("float32") for g in _lion_grads(t)]
        if buf is None:
            opt.apply(grads, variables)
        else:  # the fused whole-buffer update that fit runs
            for view, g in zip(buf.views_of(buf.grad), grads):
                view[...] = g
            opt.apply_flat(buf)
        got = np.concatenate([v.numpy().ravel() for v in variables])
        np.testing.assert_allclose(got, expected, rtol=0, atol=2e-7, err_msg=f"step {t + 1}")
