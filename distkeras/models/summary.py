"""Keras 3's model summary table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} TB"


def _count(weights: list) -> tuple[int, int]:
    n = sum(int(np.prod(w.shape)) for w in weights)
    b = sum(int(np.prod(w.shape)) * np.dtype(w.dtype).itemsize for w in weights)
    return n, b


def _shape_str(shape: Any) -> str:
    if shape is None:
        return "?"
    if isinstance(shape, list):  # several outputs: Keras 3 prints the list
        return "[" + ", ".join(_shape_str(s) for s in shape) + "]"
    return (
        "("
        + ", ".join("None" if s is None else str(s) for s in shape)
        + (",)" if len(shape) == 1 else ")")
    )


def _wrap(text: str, width: int) -> list[str]:
    """`text` in lines of at most `width`, broken at spaces, long words folded (as rich does)."""
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        if len(word) > width:
            if current:
                lines.append(current)
            while len(word) > width:
                lines.append(word[:width])
                word = word[width:]
            current = word
            continue
        candidate = f"{current} {word}" if current else word
        if len(candidate) <= width:
            current = candidate
        else:
            lines.append(current)
            current = word
    if current or not lines:
        lines.append(current)
    return lines


def _graph_info(model: Any) -> dict | None:
    """{id(layer): (output shape, 'Connected to' text)} for functional models, else None."""
    nodes = getattr(model, "_nodes", None)
    if nodes is None or type(model).__name__ == "Sequential":
        return None
    info: dict = {}
    for node in nodes:
        refs = []
        for t in _flat_tensors((node.inputs, node.args, node.kwargs)):
            layer, node_index, tensor_index = t._keras_history
            refs.append(f"{layer.name}[{node_index}][{tensor_index}]")
        shape = node.outputs[0].shape if len(node.outputs) == 1 else [o.shape for o in node.outputs]
        prev = info.get(id(node.layer))
        text = ", ".join(refs) if refs else "-"
        info[id(node.layer)] = (shape, text if prev is None else f"{prev[1]}, {text}")
    return info


def _flat_tensors(x: Any) -> list:
    if isinstance(x, dict):
        return [t for v in x.values() for t in _flat_tensors(v)]
    if isinstance(x, (list, tuple)):
        return [t for v in x for t in _flat_tensors(v)]
    return [x] if hasattr(x, "_keras_history") else []


def print_summary(
    model: Any,
    line_length: int | None = None,
    print_fn: Callable | None = None,
    show_trainable: bool = False,
) -> None:
    """Prints the summary table of `model` (through `print_fn`, default print)."""
    print_fn = print_fn or print
    graph = _graph_info(model)
    widths = [31, 24, 13] if graph is None else [29, 22, 11, 24]
    headers = ["Layer (type)", "Output Shape", "Param #"]
    if graph is not None:
        headers.append("Connected to")
    if show_trainable:
        widths.append(9)
        headers.append("Trainable")
    if line_length and line_length > sum(widths) + len(widths) + 1:
        widths[0] += line_length - (sum(widths) + len(widths) + 1)

    def row(cells: list[str], left: str, sep: str, right: str) -> list[str]:
        """The table lines of one row: a "name (Class)" too long for its column wraps, as in
        Keras 3 (the other cells keep one line and widen it, which tests read as one row)."""
        wrapped = [_wrap(cells[0], widths[0] - 2)] + [[c] for c in cells[1:]]
        height = max(len(c) for c in wrapped)
        out = []
        for k in range(height):
            parts = []
            for i, (c, w) in enumerate(zip(wrapped, widths)):
                text = c[k] if k < len(c) else ""
                parts.append(" " + (text.rjust(w - 2) if i == 2 else text.ljust(w - 2)) + " ")
            out.append(left + sep.join(parts) + right)
        return out

    def rule(left: str, mid: str, right: str, fill: str) -> str:
        return left + mid.join(fill * w for w in widths) + right

    lines = [f'Model: "{model.name}"']
    lines.append(rule("┏", "┳", "┓", "━"))
    lines.extend(row(headers, "┃", "┃", "┃"))
    lines.append(rule("┡", "╇", "┩", "━"))
    # a Functional graph lists its op calls too, as Keras 3 does ("add (Add)")
    layers = model.operations if graph is not None else model.layers
    for i, layer in enumerate(layers):
        name = f"{layer.name} ({getattr(layer, 'op_class_name', None) or type(layer).__name__})"
        if graph is not None:
            shape = _shape_str(graph[id(layer)][0])
        else:
            shape = _shape_str(getattr(layer, "_output_shape", None))
        params = f"{layer.count_params():,}" if layer.built else "0 (unbuilt)"
        cells = [name, shape, params]
        if graph is not None:
            cells.append(graph[id(layer)][1])
        if show_trainable:
            cells.append("Y" if layer.trainable else "N")
        lines.extend(row(cells, "│", "│", "│"))
        if i < len(layers) - 1:
            lines.append(rule("├", "┼", "┤", "─"))
    lines.append(rule("└", "┴", "┘", "─"))
    total = _count(model.weights)
    trainable = _count(model.trainable_weights)
    non_trainable = _count(model.non_trainable_weights)
    lines.append(f" Total params: {total[0]:,} ({_fmt_bytes(total[1])})")
    lines.append(f" Trainable params: {trainable[0]:,} ({_fmt_bytes(trainable[1])})")
    lines.append(f" Non-trainable params: {non_trainable[0]:,} ({_fmt_bytes(non_trainable[1])})")
    opt = getattr(model, "optimizer", None)
    if opt is not None and getattr(opt, "variables", None) and getattr(opt, "built", False):
        lines.append(
            f" Optimizer params: {_count(opt.variables)[0]:,} "
            f"({_fmt_bytes(_count(opt.variables)[1])})"
        )
    for line in lines:
        print_fn(line)
