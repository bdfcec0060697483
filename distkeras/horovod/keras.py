"""`distkeras.horovod.keras`: the names of `horovod.keras` / `horovod.tensorflow.keras`.

`import distkeras.horovod.keras as hvd` is the same API as `import distkeras.horovod as hvd`.
"""

from distkeras.horovod import *  # noqa: F403
from distkeras.horovod import __all__, callbacks, load_model  # noqa: F401
