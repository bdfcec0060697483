"""Model diagrams, as `keras.utils.plot_model` and `keras.utils.model_to_dot`.

The graph is built with pydot (the optional extra `distkeras[plot]`) and drawn
by Graphviz's `dot` program, which is a system package, not a Python one:
`model_to_dot` needs only pydot, `plot_model` needs both. Each box is one
layer, or one `distkeras.ops` call, of a Functional graph; a Sequential model
is its stack of layers; a subclassed model is a single box. With
`expand_nested=True` nested models become dashed clusters and the edges go to
the boxes inside them.

Models live on a higher floor than `utils/`, so they are imported inside the
functions, as `distkeras.utils` loads its preprocessing exports on first use.
"""

from __future__ import annotations

import html
import os
from typing import Any

_GRAPHVIZ_HELP = (
    "Graphviz's `dot` program was not found: install Graphviz (Debian/Ubuntu: "
    "`apt-get install graphviz`; macOS: `brew install graphviz`; conda: "
    "`conda install graphviz`) for `plot_model` to work."
)


def _pydot() -> Any:
    try:
        import pydot  # noqa: PLC0415
    except ImportError:
        raise ImportError(
            "You must install pydot (`pip install pydot`, or `pip install distkeras[plot]`) "
            "for `plot_model` and `model_to_dot` to work."
        ) from None
    return pydot


def check_graphviz() -> bool:
    """True when pydot is installed and Graphviz's `dot` program runs."""
    try:
        pydot = _pydot()
    except ImportError:
        return False
    errors: tuple = (OSError,)
    for name in ("PydotException", "Error"):
        cls = getattr(pydot, name, None) or getattr(getattr(pydot, "exceptions", None), name, None)
        if isinstance(cls, type) and issubclass(cls, Exception):
            errors = (*errors, cls)
    try:
        pydot.Dot().create(format="png")
    except errors:
        return False
    return True


# ----------------------------------------------------------------- graph walking
def _kinds() -> tuple[type, type, type]:
    from distkeras.layers.op_layer import OpLayer  # noqa: PLC0415
    from distkeras.models.functional import Functional  # noqa: PLC0415
    from distkeras.models.sequential import Sequential  # noqa: PLC0415

    return Functional, Sequential, OpLayer


def _flat(x: Any) -> list:
    if isinstance(x, dict):
        return [v for item in x.values() for v in _flat(item)]
    if isinstance(x, (list, tuple)):
        return [v for item in x for v in _flat(item)]
    return [x]


def _graph_of(model: Any) -> Any:
    """The Functional graph that runs `model` (a Sequential's traced one), or None."""
    functional, sequential, _ = _kinds()
    if isinstance(model, sequential):
        return getattr(model, "_functional", None)
    return model if isinstance(model, functional) else None


def _boxes(model: Any) -> list:
    """The layers drawn for `model`: its graph's operations (a Sequential's layers)."""
    functional, sequential, _ = _kinds()
    if isinstance(model, sequential):
        return list(model.layers)
    return list(model._graph_layers())


def _tensor_edges(model: Any) -> list[tuple[Any, int, Any, int]]:
    """(source layer, output index, destination layer, input index) for every graph edge."""
    from distkeras.layers.keras_tensor import KerasTensor  # noqa: PLC0415

    graph = _graph_of(model)
    if graph is None:
        return []
    shown = {id(layer) for layer in _boxes(model)}
    edges = []
    for node in graph._nodes:
        if id(node.layer) not in shown:
            continue
        tensors = [
            t for t in _flat((node.inputs, node.args, node.kwargs)) if isinstance(t, KerasTensor)
        ]
        for input_index, t in enumerate(tensors):
            source, _, output_index = t._keras_history
            if id(source) in shown:
                edges.append((source, output_index, node.layer, input_index))
    return edges


def _node_tensors(model: Any, layer: Any) -> tuple[list, list]:
    """Input and output KerasTensors of `layer`'s first call inside `model`."""
    from distkeras.layers.keras_tensor import KerasTensor  # noqa: PLC0415

    graph = _graph_of(model)
    nodes = [] if graph is None else [n for n in layer._inbound_nodes if n in graph._nodes]
    if not nodes:
        out = getattr(layer, "output", None)
        return [], [out] if isinstance(out, KerasTensor) else []
    node = nodes[0]
    inputs = [t for t in _flat((node.inputs, node.args, node.kwargs)) if isinstance(t, KerasTensor)]
    return inputs, list(node.outputs)


# ----------------------------------------------------------------- labels
def _class_label(layer: Any) -> str:
    # an op call reads as Keras 3's op classes: Add, Mean, ...
    return getattr(layer, "op_class_name", None) or type(layer).__name__


def _activation_name(layer: Any) -> str:
    act = layer.activation
    return str(getattr(act, "name", None) or getattr(act, "__name__", None) or act)


def _format_shapes(tensors: list) -> str:
    if not tensors:
        return "?"
    shapes = [str(tuple(t.shape)) for t in tensors]
    return shapes[0] if len(shapes) == 1 else "[" + ", ".join(shapes) + "]"


def _label(model: Any, layer: Any, options: dict) -> str:
    """Graphviz HTML-like label: a title row, then activation, shapes, dtype, trainable."""
    from distkeras.layers.core import InputLayer  # noqa: PLC0415

    cls = html.escape(_class_label(layer))
    title = (
        f"<b>{html.escape(layer.name)}</b> ({cls})"
        if options["show_layer_names"]
        else f"<b>{cls}</b>"
    )
    cells = []
    if options["show_shapes"]:
        inputs, outputs = _node_tensors(model, layer)
        if not isinstance(layer, InputLayer):
            cells.append(f"Input shape: <b>{html.escape(_format_shapes(inputs))}</b>")
        cells.append(f"Output shape: <b>{html.escape(_format_shapes(outputs))}</b>")
    if options["show_dtype"]:
        _, outputs = _node_tensors(model, layer)
        dtypes = sorted({t.dtype for t in outputs}) or ["?"]
        cells.append(f"Output dtype: <b>{html.escape(', '.join(dtypes))}</b>")
    trainable_cell = None
    if options["show_trainable"] and layer.weights:
        trainable_cell = (
            '<td bgcolor="forestgreen"><font point-size="14" color="white">'
            "<b>Trainable</b></font></td>"
            if layer.trainable
            else '<td bgcolor="firebrick"><font point-size="14" color="white">'
            "<b>Non-trainable</b></font></td>"
        )
    span = max(1, len(cells) + (trainable_cell is not None))
    rows = [
        f'<tr><td colspan="{span}" bgcolor="black"><font point-size="16" color="white">'
        f"{title}</font></td></tr>"
    ]
    if options["show_layer_activations"] and getattr(layer, "activation", None) is not None:
        rows.append(
            f'<tr><td colspan="{span}" bgcolor="white"><font point-size="14">'
            f"Activation: <b>{html.escape(_activation_name(layer))}</b></font></td></tr>"
        )
    row = [f'<td bgcolor="white"><font point-size="14">{c}</font></td>' for c in cells]
    if trainable_cell is not None:
        row.append(trainable_cell)
    if row:
        rows.append("<tr>" + "".join(row) + "</tr>")
    table = '<table border="0" cellborder="1" bgcolor="black" cellpadding="10">'
    return "<" + table + "".join(rows) + "</table>>"


def _node(pydot: Any, model: Any, layer: Any, options: dict) -> Any:
    node = pydot.Node(str(id(layer)), label=_label(model, layer, options))
    node.set("fontname", "Helvetica")
    node.set("border", "0")
    node.set("margin", "0")
    return node


def _add_edge(pydot: Any, dot: Any, source: Any, destination: Any) -> None:
    src, dst = str(id(source)), str(id(destination))
    if not dot.get_edge(src, dst):
        edge = pydot.Edge(src, dst)
        edge.set("penwidth", "2")
        dot.add_edge(edge)


def _innermost_source(layer: Any, output_index: int) -> Any:
    """The box inside nested models that produces output `output_index` of `layer`."""
    functional, sequential, _ = _kinds()
    while isinstance(layer, (functional, sequential)):
        if isinstance(layer, sequential):
            layer, output_index = layer.layers[-1], 0
        else:
            layer, _, output_index = layer.outputs[output_index]._keras_history
    return layer


def _innermost_destination(layer: Any, input_index: int) -> Any:
    """The box inside nested models that receives input `input_index` of `layer`."""
    functional, sequential, _ = _kinds()
    while isinstance(layer, (functional, sequential)):
        if isinstance(layer, sequential):
            layer, input_index = layer.layers[0], 0
        else:
            inputs = layer.inputs
            layer = inputs[min(input_index, len(inputs) - 1)]._keras_history[0]
    return layer


# ----------------------------------------------------------------- public API
def model_to_dot(
    model: Any,
    show_shapes: bool = False,
    show_dtype: bool = False,
    show_layer_names: bool = True,
    rankdir: str = "TB",
    expand_nested: bool = False,
    dpi: int = 200,
    subgraph: bool = False,
    show_layer_activations: bool = False,
    show_trainable: bool = False,
    splines: str = "ortho",
    **kwargs: Any,
) -> Any:
    """Converts a model to a `pydot.Dot` graph (no Graphviz needed).

    Args:
        model: A built model.
        show_shapes: Show each layer's input and output shapes.
        show_dtype: Show each layer's output dtype.
        show_layer_names: Show layer names next to their class.
        rankdir: `"TB"` draws top to bottom, `"LR"` left to right.
        expand_nested: Draw nested models as clusters of their layers.
        dpi: Resolution of rendered images.
        subgraph: Return a `pydot.Cluster` (used for nested models).
        show_layer_activations: Show the `activation` of layers that have one.
        show_trainable: Mark layers with weights as trainable or not.
        splines: How Graphviz draws edges (`"ortho"`, `"curved"`, `"line"`, ...).

    Returns:
        A `pydot.Dot`, or a `pydot.Cluster` when `subgraph=True`.
    """
    if kwargs:
        raise ValueError(f"Unrecognized keyword arguments: {sorted(kwargs)}. Received: {kwargs}")
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(
            f"`rankdir` must be 'TB', 'LR', 'BT' or 'RL'. Received: rankdir={rankdir!r}"
        )
    if not getattr(model, "built", False):
        raise ValueError(
            "This model has not yet been built. Build the model first by calling `build()` "
            f"or by calling the model on a batch of data. Received: model={model.name!r}"
        )
    pydot = _pydot()
    functional, sequential, _ = _kinds()
    options = {
        "show_shapes": show_shapes,
        "show_dtype": show_dtype,
        "show_layer_names": show_layer_names,
        "show_layer_activations": show_layer_activations,
        "show_trainable": show_trainable,
    }
    if subgraph:
        dot = pydot.Cluster(graph_name=model.name, style="dashed")
        dot.set("label", model.name)
        dot.set("labeljust", "l")
    else:
        dot = pydot.Dot()
        dot.set("rankdir", rankdir)
        dot.set("concentrate", True)
        dot.set("dpi", dpi)
        dot.set("splines", splines)
        dot.set_node_defaults(shape="record")
    if _graph_of(model) is None and not isinstance(model, sequential):
        dot.add_node(_node(pydot, model, model, options))  # a subclassed model: one box
        return dot
    boxes = _boxes(model)
    for layer in boxes:
        if expand_nested and isinstance(layer, (functional, sequential)):
            dot.add_subgraph(
                model_to_dot(
                    layer,
                    show_shapes=show_shapes,
                    show_dtype=show_dtype,
                    show_layer_names=show_layer_names,
                    rankdir=rankdir,
                    expand_nested=True,
                    subgraph=True,
                    show_layer_activations=show_layer_activations,
                    show_trainable=show_trainable,
                )
            )
        else:
            dot.add_node(_node(pydot, model, layer, options))
    for source, output_index, destination, input_index in _tensor_edges(model):
        if expand_nested:
            source = _innermost_source(source, output_index)
            destination = _innermost_destination(destination, input_index)
        _add_edge(pydot, dot, source, destination)
    return dot


def plot_model(
    model: Any,
    to_file: str | os.PathLike = "model.png",
    show_shapes: bool = False,
    show_dtype: bool = False,
    show_layer_names: bool = False,
    rankdir: str = "TB",
    expand_nested: bool = False,
    dpi: int = 200,
    show_layer_activations: bool = False,
    show_trainable: bool = False,
    splines: str = "ortho",
    **kwargs: Any,
) -> Any:
    """Draws a model to an image file (PNG, SVG, PDF, ... by the file's extension).

    Needs pydot (`pip install distkeras[plot]`) and Graphviz's `dot` program.

    Args:
        model: A built model.
        to_file: Output path; its extension picks the format (PNG when it has none).
        show_shapes: Show each layer's input and output shapes.
        show_dtype: Show each layer's output dtype.
        show_layer_names: Show layer names next to their class.
        rankdir: `"TB"` draws top to bottom, `"LR"` left to right.
        expand_nested: Draw nested models as clusters of their layers.
        dpi: Image resolution in dots per inch.
        show_layer_activations: Show the `activation` of layers that have one.
        show_trainable: Mark layers with weights as trainable or not.
        splines: How Graphviz draws edges.

    Returns:
        An `IPython.display.Image` (or `SVG`) of the file when IPython is installed
        and the format is a picture one, else None.

    Raises:
        ImportError: when pydot or Graphviz is missing, saying what to install.
    """
    if not getattr(model, "built", False):
        raise ValueError(
            "This model has not yet been built. Build the model first by calling `build()` "
            f"or by calling the model on a batch of data. Received: model={model.name!r}"
        )
    _pydot()
    if not check_graphviz():
        raise ImportError(_GRAPHVIZ_HELP)
    dot = model_to_dot(
        model,
        show_shapes=show_shapes,
        show_dtype=show_dtype,
        show_layer_names=show_layer_names,
        rankdir=rankdir,
        expand_nested=expand_nested,
        dpi=dpi,
        show_layer_activations=show_layer_activations,
        show_trainable=show_trainable,
        splines=splines,
        **kwargs,
    )
    to_file = os.fspath(to_file)
    extension = os.path.splitext(to_file)[1][1:] or "png"
    dot.write(to_file, format=extension)
    try:
        from IPython import display  # noqa: PLC0415
    except ImportError:
        return None
    if extension == "svg":
        return display.SVG(filename=to_file)
    if extension in ("png", "jpg", "jpeg", "gif"):
        return display.Image(filename=to_file, format="jpeg" if extension == "jpg" else extension)
    return None
