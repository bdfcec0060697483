"""Optimizers: updates vs NumPy re-implementations of Keras 3's formulas, flat path vs
per-variable path (bitwise), clipping, constraints, learning rates, schedules, serialization."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

from distkeras import ops, optimizers
from distkeras.backend import Variable
from distkeras.backend.buffers import FlatBuffer
from distkeras.optimizers import schedules

SHAPES = [(4, 3), (3,), (2, 2, 2)]
STEPS = 5
LR = 0.01


def _f32(x: float) -> float:
    return float(np.float32(x))


# ---------------------------------------------------------------- NumPy references
# Each reference is `step(p, g, state, t, lr)` returning the new parameter; `state`
# is a dict private to one variable; `t` is the 1-based step; `lr` the rate.
def ref_sgd(momentum=0.0, nesterov=False):
    def step(p, g, s, t, lr):
        if momentum == 0:
            return p - g * lr
        m = s.get("m", np.zeros_like(p))
        m = m * momentum - g * lr
        s["m"] = m
        return p + (m * momentum - g * lr) if nesterov else p + m

    return step


def ref_adam(beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, weight_decay=None):
    def step(p, g, s, t, lr):
        if weight_decay is not None:
            p = p - p * weight_decay * lr
        m = s.get("m", np.zeros_like(p))
        v = s.get("v", np.zeros_like(p))
        alpha = lr * math.sqrt(1 - beta_2**t) / (1 - beta_1**t)
        m = m + (g - m) * (1 - beta_1)
        v = v + (g * g - v) * (1 - beta_2)
        s["m"], s["v"] = m, v
        if amsgrad:
            v = np.maximum(s.get("vh", np.zeros_like(p)), v)
            s["vh"] = v
        return p - m * alpha / (np.sqrt(v) + epsilon)

    return step


def ref_rmsprop(rho=0.9, momentum=0.0, epsilon=1e-7, centered=False):
    def step(p, g, s, t, lr):
        v = rho * s.get("v", np.zeros_like(p)) + (1 - rho) * g * g
        s["v"] = v
        if centered:
            a = rho * s.get("a", np.zeros_like(p)) + (1 - rho) * g
            s["a"] = a
            den = v - a * a + epsilon
        else:
            den = v + epsilon
        inc = lr * g / np.sqrt(den)
        if momentum > 0:
            mo = momentum * s.get("mo", np.zeros_like(p)) + inc
            s["mo"] = mo
            return p - mo
        return p - inc

    return step


def ref_adagrad(initial_accumulator_value=0.1, epsilon=1e-7):
    def step(p, g, s, t, lr):
        acc = s.get("acc", np.full_like(p, initial_accumulator_value)) + g * g
        s["acc"] = acc
        return p - lr * g / np.sqrt(acc + epsilon)

    return step


def ref_adadelta(rho=0.95, epsilon=1e-7):
    def step(p, g, s, t, lr):
        ag = rho * s.get("ag", np.zeros_like(p)) + (1 - rho) * g * g
        ad = s.get("ad", np.zeros_like(p))
        delta = -np.sqrt(ad + epsilon) * g / np.sqrt(ag + epsilon)
        s["ag"], s["ad"] = ag, rho * ad + (1 - rho) * delta * delta
        return p + lr * delta

    return step


def ref_adamax(beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    def step(p, g, s, t, lr):
        m = s.get("m", np.zeros_like(p))
        m = m + (g - m) * (1 - beta_1)
        u = np.maximum(beta_2 * s.get("u", np.zeros_like(p)), np.abs(g))
        s["m"], s["u"] = m, u
        return p - lr * m / ((1 - beta_1**t) * (u + epsilon))

    return step


def ref_nadam(beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    def step(p, g, s, t, lr):
        u_t = beta_1 * (1 - 0.5 * 0.96**t)
        u_t1 = beta_1 * (1 - 0.5 * 0.96 ** (t + 1))
        # The running product is shared by all variables; keep it per step index.
        prod = s.setdefault("prod", {0: 1.0})
        if t not in prod:  # updated once per applied step (not per accumulation call)
            prod[t] = prod[max(prod)] * u_t
        u_prod = prod[t]
        m = s.get("m", np.zeros_like(p))
        v = s.get("v", np.zeros_like(p))
        m = m + (g - m) * (1 - beta_1)
        v = v + (g * g - v) * (1 - beta_2)
        s["m"], s["v"] = m, v
        m_hat = u_t1 * m / (1 - u_prod * u_t1) + (1 - u_t) * g / (1 - u_prod)
        v_hat = v / (1 - beta_2**t)
        return p - m_hat * lr / (np.sqrt(v_hat) + epsilon)

    return step


def ref_lion(beta_1=0.9, beta_2=0.99):
    def step(p, g, s, t, lr):
        m = s.get("m", np.zeros_like(p))
        p = p - lr * np.sign(m * beta_1 + g * (1 - beta_1))
        s["m"] = m * beta_2 + g * (1 - beta_2)
        return p

    return step


def ref_ftrl(
    learning_rate_power=-0.5,
    initial_accumulator_value=0.1,
    l1_regularization_strength=0.0,
    l2_regularization_strength=0.0,
    l2_shrinkage_regularization_strength=0.0,
    beta=0.0,
):
    def step(p, g, s, t, lr):
        n = s.get("n", np.full_like(p, initial_accumulator_value))
        z = s.get("z", np.zeros_like(p))
        e = -learning_rate_power
        n_new = n + g * g
        sigma = (n_new**e - n**e) / lr
        z = z + (g + 2 * l2_shrinkage_regularization_strength * p) - sigma * p
        l2 = l2_regularization_strength + beta / (2 * lr)
        quadratic = n_new**e / lr + 2 * l2
        l1 = l1_regularization_strength
        s["n"], s["z"] = n_new, z
        return (np.clip(z, -l1, l1) - z) / quadratic

    return step


CASES = {
    "sgd": (optimizers.SGD, {}, ref_sgd()),
    "sgd_momentum": (optimizers.SGD, {"momentum": 0.9}, ref_sgd(0.9)),
    "sgd_nesterov": (optimizers.SGD, {"momentum": 0.8, "nesterov": True}, ref_sgd(0.8, True)),
    "adam": (optimizers.Adam, {}, ref_adam()),
    "adam_amsgrad": (optimizers.Adam, {"amsgrad": True}, ref_adam(amsgrad=True)),
    "adamw": (optimizers.AdamW, {"weight_decay": 0.1}, ref_adam(weight_decay=0.1)),
    "rmsprop": (optimizers.RMSprop, {}, ref_rmsprop()),
    "rmsprop_momentum_centered": (
        optimizers.RMSprop,
        {"momentum": 0.5, "centered": True},
        ref_rmsprop(momentum=0.5, centered=True),
    ),
    "adagrad": (optimizers.Adagrad, {}, ref_adagrad()),
    "adadelta": (optimizers.Adadelta, {}, ref_adadelta()),
    "adamax": (optimizers.Adamax, {}, ref_adamax()),
    "nadam": (optimizers.Nadam, {}, ref_nadam()),
    "lion": (optimizers.Lion, {}, ref_lion()),
    "ftrl": (optimizers.Ftrl, {}, ref_ftrl()),
    "ftrl_regularized": (
        optimizers.Ftrl,
        {
            "learning_rate_power": -0.3,
            "l1_regularization_strength": 0.01,
            "l2_regularization_strength": 0.1,
            "l2_shrinkage_regularization_strength": 0.05,
            "beta": 0.2,
        },
        ref_ftrl(-0.3, 0.1, 0.01, 0.1, 0.05, 0.2),
    ),
    "ftrl_fixed_rate": (
        optimizers.Ftrl,
        {"learning_rate_power": 0.0, "initial_accumulator_value": 0.0},
        ref_ftrl(0.0, 0.0),
    ),
}


def _data(seed=0, dtype="float64", shapes=SHAPES, steps=STEPS):
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=s).astype(dtype) for s in shapes]
    grads = [[rng.normal(size=s).astype(dtype) for s in shapes] for _ in range(steps)]
    return params, grads


@pytest.mark.parametrize("case", sorted(CASES))
def test_update_matches_keras_formula(case):
    cls, kwargs, ref = CASES[case]
    params, grads = _data()
    variables = [Variable(p) for p in params]
    opt = cls(learning_rate=LR, **kwargs)
    expected = [p.copy() for p in params]
    states = [{} for _ in params]
    shared_prod = {0: 1.0}
    for s in states:
        s["prod"] = shared_prod
    lr = _f32(LR)
    for t, gs in enumerate(grads, start=1):
        opt.apply(gs, variables)
        expected = [ref(p, g, s, t, lr) for p, g, s in zip(expected, gs, states)]
        for v, e in zip(variables, expected):
            np.testing.assert_allclose(v.numpy(), e, rtol=1e-6, atol=1e-9)
    assert int(opt.iterations) == STEPS


# Configurations exercised on both paths: the flat path must equal the per-variable path
# bit for bit (same elementwise ops on the same values; norms summed per variable).
FLAT_CASES = {
    **{k: (c, kw) for k, (c, kw, _) in CASES.items()},
    "adam_clipnorm": (optimizers.Adam, {"clipnorm": 0.5}),
    "adam_global_clipnorm": (optimizers.Adam, {"global_clipnorm": 0.7}),
    "sgd_clipvalue": (optimizers.SGD, {"clipvalue": 0.3, "momentum": 0.5}),
    "sgd_weight_decay": (optimizers.SGD, {"weight_decay": 0.05}),
    "adam_ema": (optimizers.Adam, {"use_ema": True, "ema_overwrite_frequency": 3}),
    "sgd_accumulation": (optimizers.SGD, {"gradient_accumulation_steps": 2, "momentum": 0.9}),
    "adam_loss_scale": (optimizers.Adam, {"loss_scale_factor": 128.0}),
}


def _run_pair(cls, kwargs, shapes=SHAPES, steps=STEPS, prepare=None, dtype="float32"):
    params, grads = _data(1, dtype, shapes, steps)
    per_var = [Variable(p) for p in params]
    flat_vars = [Variable(p) for p in params]
    opt_a, opt_b = cls(**kwargs), cls(**kwargs)
    if prepare is not None:
        prepare(opt_a, per_var)
        prepare(opt_b, flat_vars)
    buf = FlatBuffer(flat_vars)
    for gs in grads:
        opt_a.apply([g.copy() for g in gs], per_var)
        for view, g in zip(buf.views_of(buf.grad), gs):
            view[...] = g
        opt_b.apply_flat(buf)
    return opt_a, opt_b, per_var, flat_vars, buf


@pytest.mark.parametrize("case", sorted(FLAT_CASES))
def test_flat_path_equals_per_variable_path_bitwise(case):
    cls, kwargs = FLAT_CASES[case]
    opt_a, opt_b, per_var, flat_vars, _ = _run_pair(cls, kwargs)
    for a, b in zip(per_var, flat_vars):
        assert np.array_equal(a.numpy(), b.numpy())
    assert len(opt_a.variables) == len(opt_b.variables)
    for a, b in zip(opt_a.variables, opt_b.variables):
        assert a.shape == b.shape and np.array_equal(a.numpy(), b.numpy()), a.path


def test_flat_weight_decay_exclusion_equals_per_variable():
    def prepare(opt, variables):
        opt.exclude_from_weight_decay(var_list=[variables[1]])

    _, _, per_var, flat_vars, _ = _run_pair(
        optimizers.AdamW, {"weight_decay": 0.2}, prepare=prepare
    )
    for a, b in zip(per_var, flat_vars):
        assert np.array_equal(a.numpy(), b.numpy())


def test_flat_slots_share_memory_and_mixed_paths_agree():
    opt, flat_opt, per_var, flat_vars, buf = _run_pair(optimizers.Adam, {})
    st = flat_opt._flat[id(buf)]
    slots = flat_opt.variables[2:]
    assert all(any(np.shares_memory(s.data, f) for f in st.slots) for s in slots)
    # After the flat build, the per-variable path works on the same (shared) slots.
    _, grads = _data(7, "float32")
    for gs in grads:
        opt.apply(gs, per_var)
        flat_opt.apply(gs, flat_vars)
    for a, b in zip(per_var, flat_vars):
        assert np.array_equal(a.numpy(), b.numpy())


def test_threaded_flat_update_is_bitwise_identical():
    shapes = [(300, 500), (70_001,)]
    try:
        optimizers.set_update_threads(1)
        _, _, _, single, _ = _run_pair(optimizers.Adam, {}, shapes=shapes, steps=2)
        optimizers.set_update_threads(2)
        _, opt, _, threaded, buf = _run_pair(optimizers.Adam, {}, shapes=shapes, steps=2)
        assert opt._flat[id(buf)].chunks is not None
    finally:
        optimizers.set_update_threads(1)
    for a, b in zip(single, threaded):
        assert np.array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("case", ["adam", "sgd_momentum", "nadam"])
def test_apply_flat_does_not_allocate_per_step(case):
    cls, kwargs, _ = CASES[case]
    variables = [Variable(np.ones((250, 400), "float32")), Variable(np.ones(400, "float32"))]
    buf = FlatBuffer(variables)
    buf.grad[...] = 0.01
    opt = cls(**kwargs)
    opt.apply_flat(buf)  # builds slots and scratch
    tracemalloc.start()
    try:
        for _ in range(10):
            opt.apply_flat(buf)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < buf.data.nbytes // 20, peak  # one temporary would be the full buffer


# ---------------------------------------------------------------- clipping & decay
def _sgd_step(grads, **kwargs):
    params = [np.zeros_like(g) for g in grads]
    variables = [Variable(p) for p in params]
    optimizers.SGD(learning_rate=1.0, **kwargs).apply(grads, variables)
    return [-v.numpy() for v in variables]  # the applied (clipped) gradient


def test_clipnorm_clips_each_gradient_to_its_norm():
    g1 = np.array([3.0, 4.0])  # norm 5
    g2 = np.array([0.3, 0.4])  # norm 0.5
    c1, c2 = _sgd_step([g1, g2], clipnorm=1.0)
    np.testing.assert_allclose(c1, g1 / 5.0, rtol=1e-6)
    np.testing.assert_allclose(c2, g2, rtol=1e-6)


def test_global_clipnorm_scales_all_gradients_together():
    g1, g2 = np.array([3.0, 0.0]), np.array([0.0, 4.0])  # global norm 5
    c1, c2 = _sgd_step([g1, g2], global_clipnorm=2.5)
    np.testing.assert_allclose(c1, g1 / 2, rtol=1e-6)
    np.testing.assert_allclose(c2, g2 / 2, rtol=1e-6)
    c1, c2 = _sgd_step([g1, g2], global_clipnorm=10.0)
    np.testing.assert_allclose(c1, g1, rtol=1e-6)


def test_clipvalue_clips_elementwise():
    g = np.array([-2.0, -0.1, 0.2, 3.0])
    (c,) = _sgd_step([g], clipvalue=0.5)
    np.testing.assert_allclose(c, [-0.5, -0.1, 0.2, 0.5])


def test_weight_decay_is_applied_before_update():
    p, g = np.array([1.0, -2.0]), np.array([0.5, 0.5])
    v = Variable(p)
    optimizers.SGD(learning_rate=0.1, weight_decay=0.2).apply([g], [v])
    lr = _f32(0.1)
    np.testing.assert_allclose(v.numpy(), (p - p * 0.2 * lr) - g * lr, rtol=1e-12)


def test_only_one_clipping_option_allowed():
    with pytest.raises(ValueError, match="Only one of"):
        optimizers.Adam(clipnorm=1.0, clipvalue=1.0)


# ---------------------------------------------------------------- constraints, None grads
@pytest.mark.parametrize("flat", [False, True])
def test_constraint_is_applied_after_update(flat):
    v = Variable(np.array([0.05, -0.05, 0.5]), constraint=lambda x: ops.clip(x, -0.1, 0.1))
    w = Variable(np.array([1.0, 2.0]))
    g = [np.array([-1.0, 1.0, 0.0]), np.array([1.0, 1.0])]
    opt = optimizers.SGD(learning_rate=0.1)
    if flat:
        buf = FlatBuffer([v, w])
        for view, gi in zip(buf.views_of(buf.grad), g):
            view[...] = gi
        opt.apply_flat(buf)
    else:
        opt.apply(g, [v, w])
    lr = _f32(0.1)
    np.testing.assert_allclose(v.numpy(), np.clip([0.05 + lr, -0.05 - lr, 0.5], -0.1, 0.1))
    np.testing.assert_allclose(w.numpy(), [1.0 - lr, 2.0 - lr])


def test_none_gradients_are_skipped_with_a_warning():
    a, b = Variable(np.ones(2)), Variable(np.ones(2))
    opt = optimizers.Adam()
    with pytest.warns(UserWarning, match="Gradients do not exist"):
        opt.apply([None, np.ones(2)], [a, b])
    assert np.array_equal(a.numpy(), np.ones(2)) and not np.array_equal(b.numpy(), np.ones(2))
    with pytest.raises(ValueError, match="No gradients"):
        opt.apply([None, None], [a, b])


def test_gradients_may_be_tensors_or_lists():
    v = Variable(np.zeros(3))
    opt = optimizers.SGD(learning_rate=1.0)
    opt.apply([ops.convert_to_tensor(np.ones(3))], [v])
    opt.apply_gradients([([1.0, 1.0, 1.0], v)])
    np.testing.assert_allclose(v.numpy(), -2 * _f32(1.0) * np.ones(3))


def test_unknown_variable_and_bad_arguments_raise():
    opt = optimizers.SGD()
    opt.apply([np.ones(2)], [Variable(np.ones(2))])
    with pytest.raises(ValueError, match="Unknown variable"):
        opt.apply([np.ones(2)], [Variable(np.ones(2))])
    with pytest.raises(ValueError, match="momentum=1.5"):
        optimizers.SGD(momentum=1.5)
    with pytest.raises(ValueError, match="not recognized"):
        optimizers.Adam(lr=0.1)
    with pytest.raises(ValueError, match="learning_rate"):
        optimizers.Adam(learning_rate="fast")
    with pytest.raises(ValueError, match="weight_decay=None"):
        optimizers.AdamW(weight_decay=None)


def test_gradient_accumulation_and_ema_follow_keras():
    p = np.array([1.0, 2.0])
    g1, g2 = np.array([1.0, 3.0]), np.array([3.0, 1.0])
    v = Variable(p)
    opt = optimizers.SGD(learning_rate=0.5, gradient_accumulation_steps=2)
    opt.apply([g1], [v])
    np.testing.assert_array_equal(v.numpy(), p)
    opt.apply([g2], [v])
    np.testing.assert_allclose(v.numpy(), p - 0.5 * (g1 + g2) / 2)
    assert int(opt.iterations) == 2

    v = Variable(p)
    opt = optimizers.SGD(learning_rate=0.5, use_ema=True, ema_momentum=0.9)
    opt.apply([g1], [v])
    p1 = v.numpy().copy()
    opt.apply([g2], [v])
    p2 = v.numpy().copy()
    opt.finalize_variable_values([v])
    np.testing.assert_allclose(v.numpy(), 0.9 * p1 + 0.1 * p2)


# ---------------------------------------------------------------- learning rate
def test_learning_rate_is_settable_and_used():
    v = Variable(np.zeros(2))
    opt = optimizers.SGD(learning_rate=0.1)
    assert float(opt.learning_rate) == pytest.approx(0.1)
    opt.learning_rate = 0.5
    assert float(opt.learning_rate) == 0.5
    opt.apply([np.ones(2)], [v])
    np.testing.assert_allclose(v.numpy(), [-0.5, -0.5])
    assert opt.get_config()["learning_rate"] == 0.5
    assert opt.variables[1] is opt._learning_rate


def test_schedule_is_evaluated_at_iterations_and_not_settable():
    sched = schedules.ExponentialDecay(1.0, decay_steps=2, decay_rate=0.5)
    v = Variable(np.zeros(1))
    opt = optimizers.SGD(learning_rate=sched)
    prev = 0.0
    for step in range(4):
        assert float(opt.learning_rate) == pytest.approx(sched(step))
        opt.apply([np.ones(1)], [v])
        np.testing.assert_allclose(prev - v.numpy()[0], sched(step), rtol=1e-6)
        prev = v.numpy()[0]
    with pytest.raises(TypeError, match="not settable"):
        opt.learning_rate = 0.1
    # Only the iteration count: no rate Variable (Keras 3: "sgd/iteration", then "sgd_1/...").
    assert [x.path for x in opt.variables] == [f"{opt.name}/iteration"]


def test_checkpoint_round_trip_resumes_exactly():
    params, grads = _data(3, "float32", steps=6)
    ref_vars = [Variable(p) for p in params]
    ref = optimizers.Adam(learning_rate=0.01)
    for gs in grads:
        ref.apply(gs, ref_vars)

    vars_a = [Variable(p) for p in params]
    a = optimizers.Adam(learning_rate=0.01)
    for gs in grads[:3]:
        a.apply(gs, vars_a)
    store: dict = {}
    a.save_own_variables(store)
    vars_b = [Variable(v.numpy()) for v in vars_a]
    b = optimizers.Adam(learning_rate=0.01)
    b.build(vars_b)
    b.load_own_variables(store)
    buf = FlatBuffer(vars_b)  # resume on the flat path
    for gs in grads[3:]:
        for view, g in zip(buf.views_of(buf.grad), gs):
            view[...] = g
        b.apply_flat(buf)
    for r, v in zip(ref_vars, vars_b):
        assert np.array_equal(r.numpy(), v.numpy())
    names = [v.path for v in b.variables]
    assert names[:2] == [f"{b.name}/iteration", f"{b.name}/learning_rate"]  # Keras's paths
    assert names[2].endswith("_momentum") and names[3].endswith("_velocity")


# ---------------------------------------------------------------- schedules
def _cos(step, initial, decay_steps, alpha):
    s = min(step, decay_steps)
    return initial * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * s / decay_steps)) + alpha)


def _sgdr(step, initial, first, t_mul, m_mul, alpha):
    # Walk the restart periods explicitly.
    start, length, i = 0.0, float(first), 0
    while step >= start + length:
        start += length
        length *= t_mul
        i += 1
    frac = (step - start) / length
    return initial * ((1 - alpha) * 0.5 * m_mul**i * (1 + math.cos(math.pi * frac)) + alpha)


SCHEDULES = [
    (schedules.ExponentialDecay(0.1, 10, 0.5), lambda s: 0.1 * 0.5 ** (s / 10)),
    (
        schedules.ExponentialDecay(0.1, 10, 0.5, staircase=True),
        lambda s: 0.1 * 0.5 ** (s // 10),
    ),
    (
        schedules.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1]),
        lambda s: 1.0 if s <= 10 else (0.5 if s <= 20 else 0.1),
    ),
    (
        schedules.PolynomialDecay(0.1, 20, end_learning_rate=0.01, power=2.0),
        lambda s: (0.1 - 0.01) * (1 - min(s, 20) / 20) ** 2 + 0.01,
    ),
    (
        schedules.PolynomialDecay(0.1, 20, end_learning_rate=0.01, cycle=True),
        lambda s: (0.1 - 0.01) * (1 - s / (20 * max(1, math.ceil(s / 20)))) + 0.01,
    ),
    (schedules.InverseTimeDecay(0.1, 5, 0.5), lambda s: 0.1 / (1 + 0.5 * s / 5)),
    (
        schedules.InverseTimeDecay(0.1, 5, 0.5, staircase=True),
        lambda s: 0.1 / (1 + 0.5 * (s // 5)),
    ),
    (schedules.CosineDecay(0.1, 50, alpha=0.1), lambda s: _cos(s, 0.1, 50, 0.1)),
    (
        schedules.CosineDecay(0.0, 50, warmup_target=0.2, warmup_steps=10),
        lambda s: 0.2 * s / 10 if s < 10 else _cos(s - 10, 0.2, 50, 0.0),
    ),
    (
        schedules.CosineDecayRestarts(0.1, 10, t_mul=2.0, m_mul=0.5, alpha=0.05),
        lambda s: _sgdr(s, 0.1, 10, 2.0, 0.5, 0.05),
    ),
    (
        schedules.CosineDecayRestarts(0.1, 10, t_mul=1.0),
        lambda s: _sgdr(s, 0.1, 10, 1.0, 1.0, 0.0),
    ),
]


@pytest.mark.parametrize("index", range(len(SCHEDULES)))
def test_schedule_matches_formula_and_round_trips(index):
    sched, formula = SCHEDULES[index]
    for step in [0, 1, 5, 9, 10, 11, 20, 25, 33, 59, 60, 61, 100, 250]:
        assert sched(step) == pytest.approx(formula(step), rel=1e-9, abs=1e-12), step
    restored = schedules.deserialize(schedules.serialize(sched))
    assert type(restored) is type(sched)
    assert restored.get_config() == sched.get_config()


def test_schedule_argument_validation():
    with pytest.raises(ValueError, match="decay_steps=0"):
        schedules.ExponentialDecay(0.1, 0, 0.5)
    with pytest.raises(ValueError, match="boundaries"):
        schedules.PiecewiseConstantDecay([1, 2], [1.0])


# ---------------------------------------------------------------- serialization & get
@pytest.mark.parametrize("case", sorted(CASES))
def test_config_round_trip(case):
    cls, kwargs, _ = CASES[case]
    opt = cls(learning_rate=0.25, **kwargs)
    config = opt.get_config()
    assert cls.from_config(config).get_config() == config
    restored = optimizers.deserialize(optimizers.serialize(opt))
    assert type(restored) is cls and restored.get_config() == config


def test_config_round_trip_with_schedule():
    sched = schedules.CosineDecay(0.1, 100, warmup_target=0.2, warmup_steps=5)
    opt = optimizers.SGD(learning_rate=sched, momentum=0.9, clipnorm=1.0)
    restored = optimizers.deserialize(optimizers.serialize(opt))
    assert isinstance(restored._learning_rate, schedules.CosineDecay)
    assert restored.get_config() == opt.get_config()


def test_get():
    assert isinstance(optimizers.get("adam"), optimizers.Adam)
    assert isinstance(optimizers.get("Adam"), optimizers.Adam)
    assert isinstance(optimizers.get("sgd"), optimizers.SGD)
    assert isinstance(optimizers.get("rmsprop"), optimizers.RMSprop)
    opt = optimizers.get({"class_name": "SGD", "config": {"learning_rate": 0.3, "momentum": 0.5}})
    assert isinstance(opt, optimizers.SGD) and opt.momentum == 0.5
    same = optimizers.Nadam()
    assert optimizers.get(same) is same
    assert optimizers.get(None) is None
    with pytest.raises(ValueError, match="nope"):
        optimizers.get("nope")
    with pytest.raises(ValueError):
        optimizers.get(42)
