"""Records what a rank saw: `rank_env.py OUT_DIR [EXIT_CODE [RANK]]` (RANK exits with the code)."""

import json
import os
import sys
from pathlib import Path

out = Path(sys.argv[1])
rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("SLURM_PROCID", "0")))
keys = ("CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "DISTKERAS_TEST_VALUE", "FROM_ENV_FLAG")
seen = {key: os.environ.get(key) for key in keys}
(out / f"rank{rank}.json").write_text(json.dumps(seen))
failing = int(sys.argv[3]) if len(sys.argv) > 3 else 1
sys.exit(int(sys.argv[2]) if len(sys.argv) > 2 and rank == failing else 0)
