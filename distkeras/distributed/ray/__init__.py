"""distkeras on Ray: the Ray communicator, the job driver and the script runner.

```python
import distkeras.distributed.ray as dray

result = dray.run(train_fn, num_workers=4, max_failures=2, checkpoint_dir="/shared/ckpt")
exit_code = dray.run_script("train.py", ["--epochs", "3"], num_workers=4)
```

Importing this package does not import Ray; its names load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "RayCommunicator": "communicator",
    "PeerFailedError": "rendezvous",
    "Rendezvous": "rendezvous",
    "run": "driver",
    "get_context": "driver",
    "WorkerContext": "driver",
    "WorkerError": "driver",
    "WorkersLostError": "driver",
    "PLACEMENT_STRATEGIES": "driver",
    "run_script": "script_runner",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'distkeras.distributed.ray' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_EXPORTS))


__all__ = sorted(_EXPORTS)
