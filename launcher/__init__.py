"""`distkeras-run`: start a distkeras script on N data-parallel ranks.

Modelled on horovodrun and torchrun:

    distkeras-run -np 4 python train.py                      # 4 ranks here (bundled mpirun)
    distkeras-run -np 8 -H node1:4,node2:4 python train.py   # mpirun across hosts
    distkeras-run --backend ray -np 4 --address ray://head:10001 python train.py
    distkeras-run --backend slurm -np 16 --gpus-per-proc 1 python train.py
    distkeras-run horovodrun -np 4 -H node1:2,node2:2 python train.py  # a horovodrun line

`--dry-run` prints the exact command instead of running it. The launcher lives
outside the `distkeras` package (the top floor of the design) and imports
nothing from it, so it starts instantly.
"""

from launcher.cli import LauncherError, Options, parse_args, parse_command
from launcher.plan import Context, Plan, build_plan, format_plan


def main(argv: list[str] | None = None) -> int:
    """Runs `distkeras-run` with `argv`; see `launcher.__main__.main`."""
    from launcher.__main__ import main as _main  # noqa: PLC0415 - avoid runpy double import

    return _main(argv)


__all__ = [
    "Context",
    "LauncherError",
    "Options",
    "Plan",
    "build_plan",
    "format_plan",
    "main",
    "parse_args",
    "parse_command",
]
