"""Text progress bar with running metric averages, as `keras.utils.Progbar`."""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterable
from typing import Any

import numpy as np

_BOLD, _GREEN, _GRAY, _RESET = "\x1b[1m", "\x1b[32m", "\x1b[37m", "\x1b[0m"


class Progbar:
    """Displays a progress bar.

    Metrics are averaged over the steps seen unless listed in `stateful_metrics`
    (shown as given). On a terminal (or in Jupyter) verbose mode 1 redraws one
    line in place; when stdout is not interactive (a log file, a pipe, a CI run,
    or `distkeras-run` whose own stdout is not a terminal: `DISTKERAS_STDOUT_TTY`)
    it prints only the final line of each bar, newline-terminated, with no `\r`
    or color codes. Verbose mode 2
    prints one summary line when the bar is finalized; mode 0 prints nothing.

    Args:
        target: Total number of steps expected, None if unknown.
        width: Progress bar width on screen, in characters.
        verbose: Verbosity mode: 0 (silent), 1 (live bar), 2 (one line at the end).
        interval: Minimum time between redraws in seconds (verbose 1).
        stateful_metrics: Names of metrics shown as-is rather than averaged.
        stateless_metrics: Names of metrics to average; every other metric is then
            shown as-is. Give at most one of the two lists.
        unit_name: Display name for step counts (`"step"` or `"sample"`).
    """

    def __init__(
        self,
        target: int | None,
        width: int = 20,
        verbose: int = 1,
        interval: float = 0.05,
        stateful_metrics: Iterable[str] | None = None,
        stateless_metrics: Iterable[str] | None = None,
        unit_name: str = "step",
    ):
        if stateful_metrics is not None and stateless_metrics is not None:
            raise ValueError(
                "Give at most one of `stateful_metrics` and `stateless_metrics`. "
                f"Received: stateful_metrics={stateful_metrics}, "
                f"stateless_metrics={stateless_metrics}"
            )
        if verbose not in (0, 1, 2):
            raise ValueError(f"verbose must be 0, 1 or 2. Received: verbose={verbose!r}")
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self.unit_name = unit_name
        if stateless_metrics is not None:
            self.stateful_metrics, self.stateless_metrics = None, set(stateless_metrics)
        else:
            self.stateful_metrics, self.stateless_metrics = set(stateful_metrics or ()), None
        from distkeras.distributed.env import stdout_is_terminal  # noqa: PLC0415 - loaded by fit

        self._dynamic_display = (
            stdout_is_terminal() or "ipykernel" in sys.modules or "PYCHARM_HOSTED" in os.environ
        )
        self._seen_so_far = 0
        self._values: dict[str, list[float]] = {}
        self._values_order: list[str] = []
        self._start = time.time()
        self._last_update = 0.0
        self._time_after_first_step: float | None = None
        self._prev_total_width = 0

    def _is_stateless(self, name: str) -> bool:
        if self.stateful_metrics is not None:
            return name not in self.stateful_metrics
        return name in self.stateless_metrics

    def update(
        self,
        current: int,
        values: list[tuple[str, Any]] | None = None,
        finalize: bool | None = None,
    ) -> None:
        """Updates the progress bar.

        Args:
            current: Index of the current step (1-based count of steps done).
            values: List of `(name, value_for_last_step)` tuples.
            finalize: Whether this is the last update. Defaults to
                `current >= target` (False when the target is unknown).
        """
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        for name, value in values or []:
            if name not in self._values_order:
                self._values_order.append(name)
            value = float(np.mean(value))
            if self._is_stateless(name) and not finalize:
                weight = max(current - self._seen_so_far, 1)
                total, count = self._values.get(name, (0.0, 0))
                self._values[name] = [total + value * weight, count + weight]
            else:
                # Final values (and stateful ones) are shown exactly as given.
                self._values[name] = [value, 1]
        self._seen_so_far = current

        now = time.time()
        time_per_unit = self._step_duration(current, now)
        if self.verbose == 1:
            if not finalize and (now - self._last_update < self.interval):
                return
            if self._dynamic_display:
                self._draw_live(current, now, time_per_unit, finalize)
            elif finalize:
                line = self._bar_text(current, color=False) + self._info_text(
                    current, now, time_per_unit, finalize, bold=False
                )
                _write(line + "\n")
        elif self.verbose == 2 and finalize:
            if self.target is not None and self.target > 0:
                digits = int(math.log10(self.target)) + 1
                count = f"{current:{digits}d}/{self.target}"
            else:
                count = f"{current}/Unknown"
            elapsed = f"{now - self._start:.0f}s"
            step_time = _format_time(time_per_unit, self.unit_name)
            _write(f"{count} - {elapsed} -{step_time}{self._metrics_text()}\n")
        self._last_update = now

    def add(self, n: int, values: list[tuple[str, Any]] | None = None) -> None:
        """Advances the bar by `n` steps (see `update`)."""
        self.update(self._seen_so_far + n, values)

    # -- rendering -----------------------------------------------------
    def _draw_live(self, current: int, now: float, time_per_unit: float, finalize: bool) -> None:
        bar = self._bar_text(current, color=True)
        info = self._info_text(current, now, time_per_unit, finalize, bold=True)
        visible = len(_strip_ansi(bar + info))
        message = "\r" + bar + info
        if self._prev_total_width > visible:
            message += " " * (self._prev_total_width - visible)
        if finalize:
            message += "\n"
        _write(message)
        self._prev_total_width = visible

    def _bar_text(self, current: int, color: bool) -> str:
        if self.target is None or self.target <= 0:
            return f"{current:7d}/Unknown"
        digits = int(math.log10(self.target)) + 1
        count = f"{current:{digits}d}/{self.target}"
        done = min(int(self.width * current / self.target), self.width)
        if color:
            bar = f"{_BOLD}{count}{_RESET} "
            if done > 0:
                bar += f"{_GREEN}{'━' * done}{_RESET}"
            if done < self.width:
                bar += f"{_GRAY}{'━' * (self.width - done)}{_RESET}"
            return bar
        return f"{count} " + "━" * done + "─" * (self.width - done)

    def _info_text(
        self, current: int, now: float, time_per_unit: float, finalize: bool, bold: bool
    ) -> str:
        if self.target is not None and self.target > 0 and not finalize:
            eta = time_per_unit * (self.target - current)
            if eta > 3600:
                when = f"{int(eta // 3600)}:{int(eta % 3600 // 60):02d}:{int(eta % 60):02d}"
            elif eta > 60:
                when = f"{int(eta // 60)}:{int(eta % 60):02d}"
            else:
                when = f"{int(eta)}s"
        else:
            when = f"{now - self._start:.0f}s"
        when = f"{_BOLD}{when}{_RESET}" if bold else when
        return f" {when}{_format_time(time_per_unit, self.unit_name)}{self._metrics_text()}"

    def _metrics_text(self) -> str:
        parts = []
        for name in self._values_order:
            total, count = self._values[name]
            avg = total / max(1, count)
            parts.append(f" - {name}: {avg:.4f}" if abs(avg) > 1e-3 else f" - {name}: {avg:.4e}")
        return "".join(parts)

    def _step_duration(self, current: int, now: float) -> float:
        """Seconds per step, ignoring the (usually slow) first step once past it."""
        if not current:
            return 0.0
        if self._time_after_first_step is not None and current > 1:
            per_unit = (now - self._time_after_first_step) / (current - 1)
        else:
            per_unit = (now - self._start) / current
        if current == 1:
            self._time_after_first_step = now
        return per_unit


def _format_time(time_per_unit: float, unit_name: str) -> str:
    if time_per_unit >= 1 or time_per_unit == 0:
        return f" {time_per_unit:.0f}s/{unit_name}"
    if time_per_unit >= 1e-3:
        return f" {time_per_unit * 1e3:.0f}ms/{unit_name}"
    return f" {time_per_unit * 1e6:.0f}us/{unit_name}"


def _strip_ansi(text: str) -> str:
    for code in (_BOLD, _GREEN, _GRAY, _RESET):
        text = text.replace(code, "")
    return text


def _write(message: str) -> None:
    sys.stdout.write(message)
    sys.stdout.flush()
