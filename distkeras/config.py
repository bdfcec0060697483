"""Global settings, as `keras.config`."""

from distkeras.backend import backend, epsilon, floatx, set_epsilon, set_floatx
from distkeras.saving.serialization_lib import enable_unsafe_deserialization, in_safe_mode

__all__ = [
    "backend",
    "enable_unsafe_deserialization",
    "epsilon",
    "floatx",
    "in_safe_mode",
    "set_epsilon",
    "set_floatx",
]
