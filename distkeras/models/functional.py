"""Functional models: a graph of layer calls traced from `Input` tensors."""

from __future__ import annotations

from typing import Any

import numpy as np

from distkeras import ops
from distkeras.backend.autodiff import Tensor
from distkeras.backend.tree import flatten as _flatten
from distkeras.layers.core import InputLayer
from distkeras.layers.keras_tensor import KerasTensor, Node
from distkeras.layers.layer import Layer
from distkeras.layers.mask_propagation import as_mask_tensor
from distkeras.layers.op_layer import OpLayer
from distkeras.models.model import Model


def _flatten_as_given(struct: Any) -> list:
    """`_flatten` with dicts in insertion order: the call order of earlier releases."""
    if isinstance(struct, dict):
        return [v for k in struct for v in _flatten_as_given(struct[k])]
    if isinstance(struct, (list, tuple)):
        return [v for item in struct for v in _flatten_as_given(item)]
    return [struct]


def _map(fn: Any, struct: Any) -> Any:
    if isinstance(struct, dict):
        return {k: _map(fn, v) for k, v in struct.items()}
    if isinstance(struct, (list, tuple)):
        return type(struct)(_map(fn, v) for v in struct)
    return fn(struct)


_MODEL_CLASSES = ("Functional", "Model", "Sequential")


class Functional(Model):
    """A model defined by `Model(inputs, outputs)` over symbolic tensors.

    Args:
        inputs: An `Input` tensor, or a list or dict of them.
        outputs: A symbolic tensor, or a list or dict of them.
        name: Model name.
    """

    # A Sequential model built from its first call's shape runs on other sizes (Keras 3).
    _check_input_shapes = True

    def __init__(self, inputs: Any, outputs: Any, name: str | None = None, **kwargs: Any):
        if "_inputs_struct" in self.__dict__:
            return  # `Model(inputs, outputs)` built it in `Model.__new__`; Python re-runs __init__
        Layer.__init__(self, name=name, **kwargs)
        self._init_trainer()
        for t in _flatten(inputs):
            if not isinstance(t, KerasTensor) or not isinstance(
                (t._keras_history or (None,))[0], InputLayer
            ):
                raise ValueError(
                    "All `inputs` of a functional model must be tensors returned by "
                    f"`distkeras.Input()`. Received: inputs={inputs!r}"
                )
        for t in _flatten(outputs):
            if not isinstance(t, KerasTensor):
                raise ValueError(
                    "All `outputs` of a functional model must be symbolic tensors produced by "
                    f"layers. Received: outputs={outputs!r}"
                )
        self._inputs_struct = inputs
        self._outputs_struct = outputs
        self._nodes = self._toposort()
        self._operations = self._keras_order()
        names = [layer.name for layer in self._graph_layers()]
        for name in names:
            if names.count(name) > 1:  # the config would not tell them apart
                raise ValueError(
                    f'The name "{name}" is used {names.count(name)} times in the model. '
                    f"All operation names should be unique. Received: names={names}"
                )
        self._tracked_before_graph = len(self._tracked_layers)  # (a subclass's own layers)
        for layer in self._graph_layers():
            if layer not in self._tracked_layers:
                self._tracked_layers.append(layer)
        self.built = True

    # ------------------------------------------------------------ graph
    @property
    def inputs(self) -> list[KerasTensor]:
        """The input tensors; a dict's by sorted key (Keras 3's `tree.flatten`)."""
        return _flatten(self._inputs_struct)

    @property
    def outputs(self) -> list[KerasTensor]:
        """The output tensors; a dict's by sorted key (Keras 3's `tree.flatten`)."""
        return _flatten(self._outputs_struct)

    @property
    def input(self) -> Any:
        return self._inputs_struct

    @property
    def output(self) -> Any:
        return self._outputs_struct

    @property
    def input_shape(self) -> Any:
        shapes = [t.shape for t in self.inputs]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def output_shape(self) -> Any:
        shapes = [t.shape for t in self.outputs]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def input_names(self) -> list[str]:
        """The names of `inputs`, in their order."""
        return [t._keras_history[0].name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        """The names of `outputs`' layers, in their order (dicts by sorted key)."""
        return [t._keras_history[0].name for t in self.outputs]

    def _toposort(self) -> list[Node]:
        """Nodes from the inputs to the outputs, each after the nodes it reads."""
        order: list[Node] = []
        state: dict[int, int] = {}

        def visit(t: KerasTensor) -> None:
            layer, node_index, _ = t._keras_history
            node = layer._inbound_nodes[node_index]
            key = id(node)
            if state.get(key) == 2:
                return
            if state.get(key) == 1:
                raise ValueError(f"The model graph has a cycle at layer {layer.name!r}.")
            state[key] = 1
            for parent in _flatten_as_given((node.inputs, node.args, node.kwargs)):
                while isinstance(parent, KerasTensor) and parent._mask_of is not None:
                    parent = parent._mask_of  # a symbolic mask: computed with its tensor
                if isinstance(parent, KerasTensor):
                    visit(parent)
            state[key] = 2
            order.append(node)

        for t in _flatten_as_given(self._outputs_struct):  # (`_legacy_layers` reads this order)
            visit(t)
        known_inputs = {id(t) for t in self.inputs}
        for node in order:
            if isinstance(node.layer, InputLayer) and id(node.outputs[0]) not in known_inputs:
                raise ValueError(
                    "Graph disconnected: the outputs depend on the input "
                    f"{node.layer.name!r}, which is not in `inputs`. "
                    f"Received: inputs={[t.name for t in self.inputs]}"
                )
        return order

    def _keras_order(self) -> list[Layer]:
        """The graph's layers in Keras 3's order (`keras.src.ops.function.map_graph`).

        A depth-first walk from the outputs (dicts by sorted key, as `tree.flatten`)
        numbers each layer when first reached and lists the nodes inputs-first.
        Walking that list back from the outputs gives every node a depth (an output
        node 0, a node one more than the deepest node that reads it; a shared layer
        takes its deepest call's depth before its inputs are deepened). Layers
        come deepest first, ties by their number; an input no output reads comes
        at depth 0 before the others.
        """
        number: dict[int, int] = {}
        layers: dict[int, Layer] = {}
        post: list[Node] = []
        done: set[int] = set()

        def node_of(t: KerasTensor) -> Node:
            while t._mask_of is not None:
                t = t._mask_of  # a symbolic mask: computed with its tensor
            layer, node_index, _ = t._keras_history
            return layer._inbound_nodes[node_index]

        def parents(node: Node) -> list[Node]:
            if isinstance(node.layer, InputLayer):
                return []
            flat = _flatten((node.inputs, node.args, node.kwargs))
            return [node_of(t) for t in flat if isinstance(t, KerasTensor)]

        def visit(node: Node) -> None:  # (_toposort has refused cycles)
            if id(node) in done:
                return
            number.setdefault(id(node.layer), len(number))
            layers[id(node.layer)] = node.layer
            for parent in parents(node):
                visit(parent)
            done.add(id(node))
            post.append(node)

        for t in _flatten(self._outputs_struct):
            visit(node_of(t))
        node_depth: dict[int, int] = {}
        layer_depth: dict[int, int] = {}
        for node in reversed(post):
            depth = max(node_depth.get(id(node), 0), layer_depth.get(id(node.layer), 0))
            layer_depth[id(node.layer)] = node_depth[id(node)] = depth
            for parent in parents(node):
                node_depth[id(parent)] = max(depth + 1, node_depth.get(id(parent), 0))
        for t in _flatten(self._inputs_struct):
            layer = t._keras_history[0]
            if id(layer) not in layer_depth:  # an input no output reads
                layer_depth[id(layer)], number[id(layer)] = 0, -1
                layers[id(layer)] = layer
                self._nodes.insert(0, node_of(t))
        order = sorted(layer_depth, key=lambda k: (-layer_depth[k], number[k]))
        return [layers[k] for k in order]

    def _graph_layers(self) -> list[Layer]:
        return list(self._operations)

    def _legacy_layers(self) -> list[Layer]:
        """`_layers` in the order of earlier distkeras releases: graph layers in call order.

        Files written then (no `layer_order` in their metadata) are keyed by it;
        `distkeras.models.saving` reads them with it.
        """
        pre = self._tracked_layers[: self._tracked_before_graph]
        out = list(pre)
        for node in self._nodes:
            if node.layer not in out:
                out.append(node.layer)
        return out + [layer for layer in self._tracked_layers if layer not in out]

    @property
    def operations(self) -> list[Layer]:
        """Every layer and op call of the graph, in Keras 3's order (deepest first)."""
        return self._graph_layers()

    @property
    def layers(self) -> list[Layer]:
        """Every layer of the graph (InputLayers included), in Keras 3's order.

        Calls of `distkeras.ops` functions are graph nodes but not layers, as in Keras 3.
        """
        return [layer for layer in self._graph_layers() if not isinstance(layer, OpLayer)]

    # ------------------------------------------------------------ call
    def call(self, inputs: Any, training: bool | None = None, mask: Any = None) -> Any:
        values: dict[int, Any] = {}
        flat_inputs = self._match_inputs(inputs)
        masks = _flatten(mask) if mask is not None else [None] * len(flat_inputs)
        for t, value, m in zip(self.inputs, flat_inputs, masks):
            if m is not None and isinstance(value, Tensor):
                value._keras_mask = as_mask_tensor(m)
            values[id(t)] = value

        def resolve(x: Any) -> Any:
            if not isinstance(x, KerasTensor):
                return x
            if id(x) not in values and x._mask_of is not None:  # `mask=t._keras_mask`
                return getattr(resolve(x._mask_of), "_keras_mask", None)
            return values[id(x)]

        for node in self._nodes:
            if isinstance(node.layer, InputLayer):
                continue

            args = _map(resolve, node.args) if node.args else ()
            kwargs = _map(resolve, node.kwargs) if node.kwargs else {}
            x = node.inputs
            x = resolve(x) if isinstance(x, KerasTensor) else _map(resolve, x)
            outs = node.layer(x, *args, training=training, **kwargs)
            flat_outs = outs if isinstance(outs, (list, tuple)) else [outs]
            for kt, value in zip(node.outputs, flat_outs):
                values[id(kt)] = value
        return _map(lambda t: values[id(t)], self._outputs_struct)

    def _match_inputs(self, inputs: Any) -> list:
        expected = self.inputs
        if isinstance(inputs, dict):
            if isinstance(self._inputs_struct, dict):
                names = sorted(self._inputs_struct)  # as `self.inputs`
            else:
                names = self.input_names
            missing = [n for n in names if n not in inputs]
            if missing:
                raise ValueError(
                    f"Missing data for input(s) {missing} of model {self.name!r}. "
                    f"Received: inputs with keys {sorted(inputs)}"
                )
            flat = [inputs[n] for n in names]
            return [
                _standardize_input(i, x, t, self.name, self._check_input_shapes)
                for i, (x, t) in enumerate(zip(flat, expected))
            ]
        flat = _flatten(inputs)
        if len(flat) != len(expected):
            raise ValueError(
                f"Model {self.name!r} expects {len(expected)} input(s), but it received "
                f"{len(flat)} input tensors. Received: inputs of length {len(flat)}"
            )
        return [
            _standardize_input(i, x, t, self.name, self._check_input_shapes)
            for i, (x, t) in enumerate(zip(flat, expected))
        ]

    def _convert_input(self, x: Any) -> Any:
        return x if not hasattr(x, "shape") else super()._convert_input(x)

    def build(self, input_shape: Any = None) -> None:
        self.built = True

    def compute_output_shape(self, input_shape: Any) -> Any:
        shapes = [t.shape for t in self.outputs]
        return shapes[0] if len(shapes) == 1 else shapes

    # ------------------------------------------------------------ config
    def get_config(self) -> dict:
        """Keras 3's functional config: layers with inbound_nodes, input/output layers."""
        from distkeras.saving import serialize_keras_object  # noqa: PLC0415

        operations = self._graph_layers()
        node_ids: dict[int, int] = {}
        for layer in operations:
            kept = [n for n in layer._inbound_nodes if n in self._nodes]
            for i, n in enumerate(kept):
                node_ids[id(n)] = i

        def ref(t: KerasTensor) -> list:
            layer, node_index, tensor_index = t._keras_history
            node = layer._inbound_nodes[node_index]
            return [layer.name, node_ids[id(node)], tensor_index]

        def tensor_cfg(x: Any) -> Any:
            if isinstance(x, KerasTensor) and x._mask_of is not None:
                # `mask=t._keras_mask`: a reference to `t`, marked as meaning its mask
                cfg = tensor_cfg(x._mask_of)
                cfg["config"] = {**cfg["config"], "shape": list(x.shape), "dtype": x.dtype}
                cfg["config"]["keras_mask"] = True
                return cfg
            if isinstance(x, KerasTensor):
                return {
                    "class_name": "__keras_tensor__",
                    "config": {"shape": list(x.shape), "dtype": x.dtype, "keras_history": ref(x)},
                }
            return x

        layers = []
        for layer in operations:
            cfg = serialize_keras_object(layer)
            cfg["name"] = layer.name
            nodes = []
            # Op arguments keep their tuples (`axis=(1, 2)`, `x[:, 0]`) through JSON.
            tuples = isinstance(layer, OpLayer)
            if not isinstance(layer, InputLayer):
                for node in layer._inbound_nodes:
                    if node not in self._nodes:
                        continue
                    args = [
                        encode_node_value(a, tensor_cfg, tuples) for a in (node.inputs, *node.args)
                    ]
                    kwargs = encode_node_value(node.kwargs, tensor_cfg, tuples)
                    nodes.append({"args": args, "kwargs": kwargs})
            cfg["inbound_nodes"] = nodes
            layers.append(cfg)
        return {
            "name": self.name,
            "trainable": self.trainable,
            "layers": layers,
            "input_layers": _map(ref, self._inputs_struct),
            "output_layers": _map(ref, self._outputs_struct),
        }

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> Functional:
        """Rebuilds the graph: creates every layer, then replays its inbound nodes in order."""
        from distkeras.layers import deserialize as deserialize_layer  # noqa: PLC0415

        for key in ("layers", "input_layers", "output_layers"):
            if key not in config:
                raise ValueError(
                    f"Functional config is missing the key {key!r}. Received: keys {sorted(config)}"
                )
        created: dict[str, Layer] = {}
        outputs_of: dict[tuple[str, int], list] = {}
        pending: list[tuple[Layer, int, dict]] = []
        for layer_cfg in config["layers"]:
            if layer_cfg.get("class_name") in _MODEL_CLASSES:  # a nested model
                from distkeras.models import model_from_config  # noqa: PLC0415

                layer = model_from_config(layer_cfg, custom_objects=custom_objects)
            else:
                layer = deserialize_layer(layer_cfg, custom_objects=custom_objects)
            name = layer_cfg.get("name", layer.name)
            created[name] = layer
            if isinstance(layer, InputLayer):
                outputs_of[(name, 0)] = [layer.output]
            for i, node_cfg in enumerate(layer_cfg.get("inbound_nodes", [])):
                pending.append((layer, i, node_cfg))

        def resolve(x: Any) -> Any:
            if isinstance(x, dict) and x.get("class_name") == "__keras_tensor__":
                lname, nidx, tidx = x["config"]["keras_history"]
                t = outputs_of[(lname, nidx)][tidx]
                return t._keras_mask if x["config"].get("keras_mask") else t
            return x

        def ready(x: Any) -> bool:
            if isinstance(x, dict) and x.get("class_name") == "__keras_tensor__":
                lname, nidx, _ = x["config"]["keras_history"]
                return (lname, nidx) in outputs_of
            if isinstance(x, dict):
                return all(ready(v) for v in x.values())
            if isinstance(x, (list, tuple)):
                return all(ready(v) for v in x)
            return True

        while pending:
            progressed = False
            for item in list(pending):
                layer, i, node_cfg = item
                name = next(k for k, v in created.items() if v is layer)
                if (name, i - 1) not in outputs_of and i > 0:
                    continue
                if not ready(node_cfg):
                    continue
                args = [_resolve_struct(resolve, a) for a in node_cfg.get("args", [])]
                kwargs = {
                    k: _resolve_struct(resolve, v) for k, v in node_cfg.get("kwargs", {}).items()
                }
                out = layer(*args, **kwargs)
                outputs_of[(name, i)] = list(out) if isinstance(out, (list, tuple)) else [out]
                pending.remove(item)
                progressed = True
            if not progressed:
                names = sorted({next(k for k, v in created.items() if v is p[0]) for p in pending})
                raise ValueError(
                    "Functional config has nodes whose inputs never become available "
                    f"(layers {names})."
                )

        def tensor(ref: Any) -> Any:
            if isinstance(ref, dict):
                return {k: tensor(v) for k, v in ref.items()}
            if ref and isinstance(ref[0], list):
                return [tensor(r) for r in ref]
            lname, nidx, tidx = ref
            if (lname, nidx) not in outputs_of:
                raise ValueError(f"Functional config refers to an unknown layer output {ref!r}.")
            return outputs_of[(lname, nidx)][tidx]

        return cls(
            tensor(config["input_layers"]),
            tensor(config["output_layers"]),
            name=config.get("name"),
            trainable=config.get("trainable", True),
        )


def _standardize_input(
    index: int, x: Any, ref: KerasTensor, model_name: str, check: bool = True
) -> Any:
    """One model input fitted to its `Input`, as Keras 3 does.

    A trailing axis of size 1 is squeezed or added when the ranks differ by one
    that way, and the values are cast to the `Input`'s dtype (the mask is kept).
    """
    got = tuple(getattr(x, "shape", ()))
    if not hasattr(x, "shape"):
        return x
    mask = getattr(x, "_keras_mask", None)
    y = x
    if len(got) == len(ref.shape) + 1 and got and got[-1] == 1:
        y = ops.squeeze(x, axis=-1)
    elif len(got) == len(ref.shape) - 1 and ref.shape and ref.shape[-1] == 1:
        y = ops.expand_dims(x, axis=-1)
    got = tuple(y.shape)
    if check and (
        len(got) != len(ref.shape)
        or any(e is not None and e != g for e, g in zip(ref.shape[1:], got[1:]))
    ):
        raise ValueError(
            f"Input {index} with name '{ref.name}' of layer '{model_name}' is incompatible "
            f"with the layer: expected shape={ref.shape}, found shape={tuple(x.shape)}"
        )
    if isinstance(y, Tensor) and y.data.dtype.kind in "biuf" and y.dtype != ref.dtype:
        y = ops.cast(y, ref.dtype)
    if y is not x and isinstance(y, Tensor):
        y._keras_mask = mask
    return y


def encode_node_value(x: Any, tensor_cfg: Any, tuples: bool) -> Any:
    """A node argument as JSON data, in Keras 3's layout for slices, arrays and tensors.

    Args:
        x: The argument (a nest of tensors and constants).
        tensor_cfg: Maps a KerasTensor to its `__keras_tensor__` reference.
        tuples: Whether tuples are marked as such (op arguments) or become lists.
    """
    if isinstance(x, KerasTensor):
        return tensor_cfg(x)
    if isinstance(x, dict):
        return {k: encode_node_value(v, tensor_cfg, tuples) for k, v in x.items()}
    if isinstance(x, tuple) and tuples:
        value = [encode_node_value(v, tensor_cfg, tuples) for v in x]
        return {"class_name": "__tuple__", "config": {"value": value}}
    if isinstance(x, (list, tuple)):
        return [encode_node_value(v, tensor_cfg, tuples) for v in x]
    if isinstance(x, slice):
        bounds = (x.start, x.stop, x.step)
        start, stop, step = (encode_node_value(b, tensor_cfg, tuples) for b in bounds)
        return {"class_name": "__slice__", "config": {"start": start, "stop": stop, "step": step}}
    if x is Ellipsis:
        return {"class_name": "__ellipsis__", "config": {}}
    if hasattr(x, "numpy") and hasattr(x, "dtype") and not isinstance(x, np.ndarray):
        arr = x.numpy()
        return {
            "class_name": "__tensor__",
            "config": {"value": arr.tolist(), "dtype": arr.dtype.name},
        }
    if isinstance(x, np.ndarray):
        return {"class_name": "__numpy__", "config": {"value": x.tolist(), "dtype": x.dtype.name}}
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.dtype) or (isinstance(x, type) and issubclass(x, np.generic)):
        return np.dtype(x).name
    return x


def _decode_constant(x: dict) -> Any:
    """The constant that `encode_node_value` wrote as a marked dict (not a tensor reference)."""
    kind, cfg = x["class_name"], x.get("config") or {}
    if kind == "__slice__":
        return slice(cfg.get("start"), cfg.get("stop"), cfg.get("step"))
    if kind == "__ellipsis__":
        return Ellipsis
    if kind in ("__numpy__", "__tensor__"):
        dtype = cfg.get("dtype")
        if not isinstance(dtype, str) or np.dtype(dtype).kind not in "biuf":
            raise ValueError(f"Unsupported dtype for a constant in a config. Received: {x!r}")
        arr = np.asarray(cfg.get("value"), dtype=dtype)
        if kind == "__tensor__":
            from distkeras.backend.autodiff import convert_to_tensor  # noqa: PLC0415

            return convert_to_tensor(arr)
        return arr
    raise ValueError(f"Unknown constant in a functional config. Received: {x!r}")


_CONSTANT_KINDS = ("__slice__", "__ellipsis__", "__numpy__", "__tensor__")


def _resolve_struct(resolve: Any, x: Any) -> Any:
    if isinstance(x, dict) and x.get("class_name") == "__keras_tensor__":
        return resolve(x)
    if isinstance(x, dict) and x.get("class_name") == "__tuple__":
        return tuple(_resolve_struct(resolve, v) for v in (x.get("config") or {}).get("value", []))
    if isinstance(x, dict) and x.get("class_name") in _CONSTANT_KINDS:
        return _decode_constant(x)
    if isinstance(x, dict):
        return {k: _resolve_struct(resolve, v) for k, v in x.items()}
    if isinstance(x, list):
        return [_resolve_struct(resolve, v) for v in x]
    return x
