"""Stand-in data and NumPy helpers for the Mixture Density Network guide.

Shared by the test and its reference script (real Keras), so that both see
the same points. Pure NumPy: no `keras` module is needed here.
"""

from __future__ import annotations

import numpy as np


def noisy_spiral(n: int, seed: int = 0, jitter_std: float = 0.2, turns: int = 2) -> np.ndarray:
    """Points (n, 2) float64 on the spiral r = angle, jittered, scaled into [0, 5]^2.

    Columns are x and y; a given x has several y (the spiral crosses itself).
    """
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0.0, 2.0 * np.pi * turns, size=n)
    points = np.stack([angle * np.cos(angle), angle * np.sin(angle)], axis=1)
    points = points + rng.normal(scale=jitter_std, size=(n, 2))
    low, high = points.min(), points.max()
    return 5.0 * (points - low) / (high - low)


def split_xy(points: np.ndarray):
    """The guide's inputs and targets: x = first column (n, 1), y = second (n, 1)."""
    return points[:, :1], points[:, 1:]


def mixture_nll(params: np.ndarray, y: np.ndarray, output_dim: int, num_mixes: int) -> float:
    """Mean negative log-likelihood of `y` under the mixtures in `params`, in float64 NumPy.

    `params` rows are [mus (num_mixes * output_dim), sigmas (same), pi logits
    (num_mixes)], each component a diagonal normal; an independent check of
    the keras.ops loss.
    """
    params = np.asarray(params, dtype=np.float64).reshape(-1, (2 * output_dim + 1) * num_mixes)
    y = np.asarray(y, dtype=np.float64).reshape(-1, 1, output_dim)
    width = num_mixes * output_dim
    mus = params[:, :width].reshape(-1, num_mixes, output_dim)
    sigmas = params[:, width : 2 * width].reshape(-1, num_mixes, output_dim)
    logits = params[:, 2 * width :]
    log_weights = logits - logits.max(axis=1, keepdims=True)
    log_weights = log_weights - np.log(np.exp(log_weights).sum(axis=1, keepdims=True))
    z = (y - mus) / sigmas
    log_density = np.sum(-0.5 * z**2 - np.log(sigmas) - 0.5 * np.log(2.0 * np.pi), axis=2)
    joint = log_weights + log_density
    top = joint.max(axis=1, keepdims=True)
    log_likelihood = top[:, 0] + np.log(np.exp(joint - top).sum(axis=1))
    return float(-np.mean(log_likelihood))


def gaussian_nll(y_pred: np.ndarray, y: np.ndarray, sigma: float) -> float:
    """Mean negative log-likelihood of `y` under N(y_pred, sigma^2): how an MSE model scores."""
    z = (np.asarray(y, np.float64) - np.asarray(y_pred, np.float64)) / sigma
    return float(np.mean(0.5 * z**2 + np.log(sigma) + 0.5 * np.log(2.0 * np.pi)))


def sample_mixture(params: np.ndarray, output_dim: int, num_mixes: int, rng, temp: float = 1.0):
    """One draw (1, output_dim) from the mixture of one row of `params`, as the guide samples.

    Picks a component from the softmax of the pi logits (divided by `temp`)
    by walking their cumulative sum against one uniform number, then draws
    from that component's diagonal normal.
    """
    width = num_mixes * output_dim
    mus, sigmas, logits = params[:width], params[width : 2 * width], params[2 * width :]
    weights = np.exp((logits - logits.max()) / temp)
    weights = weights / weights.sum()
    component = int(np.searchsorted(np.cumsum(weights), rng.uniform(), side="left"))
    component = min(component, num_mixes - 1)  # rounding may leave the total just under 1
    part = slice(component * output_dim, (component + 1) * output_dim)
    covariance = np.diag(sigmas[part] ** 2)
    return rng.multivariate_normal(mus[part], covariance, size=1)
