"""Fits a model with a custom train_step or compute_loss in 1 process or under mpirun.

usage: custom_step_train.py OUT_PREFIX KIND [det]
Writes OUT_PREFIX.rank<r>.json with the weights and history each rank ended with.
"""

import json
import sys

import distkeras
from tests.models import custom_steps

out, kind = sys.argv[1], sys.argv[2]
comm = distkeras.distributed.initialize(deterministic=len(sys.argv) > 3 and sys.argv[3] == "det")
weights, history = custom_steps.fit(kind, comm.rank)
with open(f"{out}.rank{comm.rank}.json", "w") as f:
    json.dump({"weights": weights, "history": history}, f)
