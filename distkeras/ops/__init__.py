"""Differentiable operations, public like `keras.ops`."""

from distkeras.backend.autodiff import convert_to_tensor, is_tensor
from distkeras.backend.primitives import getitem
from distkeras.ops import image, linalg
from distkeras.ops.conv import *  # noqa: F403
from distkeras.ops.core import *  # noqa: F403
from distkeras.ops.elementwise import *  # noqa: F403
from distkeras.ops.fft import *  # noqa: F403
from distkeras.ops.image_nn import *  # noqa: F403
from distkeras.ops.linalg import *  # noqa: F403
from distkeras.ops.manip import *  # noqa: F403
from distkeras.ops.manip_2 import *  # noqa: F403
from distkeras.ops.math import *  # noqa: F403
from distkeras.ops.nn import *  # noqa: F403
from distkeras.ops.nn import (
    binary_crossentropy,
    categorical_crossentropy,
    elu,
    gelu,
    hard_sigmoid,
    leaky_relu,
    log_sigmoid,
    log_softmax,
    one_hot,
    relu,
    relu6,
    selu,
    sigmoid,
    silu,
    softmax,
    softplus,
    softsign,
    sparse_categorical_crossentropy,
    swish,
    tanh,
)
from distkeras.ops.nn_extras import *  # noqa: F403
from distkeras.ops.numpy import *  # noqa: F403
from distkeras.ops.numpy import abs, all, any, max, min, pow, round, sum  # noqa: A004
from distkeras.ops.rnn import embedding_lookup, gru, lstm, simple_rnn, unstack_time
from distkeras.ops.slicing import *  # noqa: F403
from distkeras.ops.statistics import *  # noqa: F403
from distkeras.ops.statistics_2 import *  # noqa: F403


def stop_gradient(x):
    """Returns `x` with no gradient flowing back through it."""
    from distkeras.backend.autodiff import Tensor

    return Tensor(convert_to_tensor(x).data)


def convert_to_numpy(x):
    """Returns `x` as a NumPy array."""
    from distkeras.backend import to_numpy

    return to_numpy(x)


# Every public op above accepts symbolic tensors (see `distkeras/ops/symbolic.py`).
from distkeras.ops.symbolic import wrap_namespace as _wrap_namespace  # noqa: E402

_wrap_namespace(globals())
_wrap_namespace(vars(linalg))
_wrap_namespace(vars(image))
