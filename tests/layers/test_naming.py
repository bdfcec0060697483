"""Automatic names as Keras 3 gives them: `conv2d`, `max_pooling2d`, `dense_1`, ...

Every expected name below was recorded from Keras 3.15.1 (`keras.backend.clear_session()`,
then `cls(...).name`) on the same classes, except LocallyConnected1D/2D, which Keras 3
dropped: their names follow Keras 2.15's rule (snake case of the class name, digits kept
on their word), which gives the same result.
"""

from __future__ import annotations

import inspect
import threading

import numpy as np
import pytest

import distkeras as keras
from distkeras import backend, layers, losses, metrics, models, optimizers, utils
from distkeras.layers import Layer
from distkeras.optimizers.base import Optimizer
from distkeras.utils import naming

# Keras 3.15.1: `type(obj).__name__` -> `obj.name` right after `clear_session()`.
KERAS_AUTO_NAMES = {
    "Activation": "activation",
    "ActivityRegularization": "activity_regularization",
    "Add": "add",
    "AdditiveAttention": "additive_attention",
    "AlphaDropout": "alpha_dropout",
    "Attention": "attention",
    "Average": "average",
    "AveragePooling1D": "average_pooling1d",
    "AveragePooling2D": "average_pooling2d",
    "AveragePooling3D": "average_pooling3d",
    "AvgPool1D": "average_pooling1d",
    "AvgPool2D": "average_pooling2d",
    "AvgPool3D": "average_pooling3d",
    "BatchNormalization": "batch_normalization",
    "Bidirectional": "bidirectional",
    "CategoryEncoding": "category_encoding",
    "CenterCrop": "center_crop",
    "Concatenate": "concatenate",
    "Conv1D": "conv1d",
    "Conv1DTranspose": "conv1d_transpose",
    "Conv2D": "conv2d",
    "Conv2DTranspose": "conv2d_transpose",
    "Conv3D": "conv3d",
    "Conv3DTranspose": "conv3d_transpose",
    "Convolution1D": "conv1d",
    "Convolution1DTranspose": "conv1d_transpose",
    "Convolution2D": "conv2d",
    "Convolution2DTranspose": "conv2d_transpose",
    "Convolution3D": "conv3d",
    "Convolution3DTranspose": "conv3d_transpose",
    "Cropping1D": "cropping1d",
    "Cropping2D": "cropping2d",
    "Cropping3D": "cropping3d",
    "Dense": "dense",
    "DepthwiseConv1D": "depthwise_conv1d",
    "DepthwiseConv2D": "depthwise_conv2d",
    "Discretization": "discretization",
    "Dot": "dot",
    "Dropout": "dropout",
    "ELU": "elu",
    "Embedding": "embedding",
    "Flatten": "flatten",
    "GRU": "gru",
    "GRUCell": "gru_cell",
    "GaussianDropout": "gaussian_dropout",
    "GaussianNoise": "gaussian_noise",
    "GlobalAveragePooling1D": "global_average_pooling1d",
    "GlobalAveragePooling2D": "global_average_pooling2d",
    "GlobalAveragePooling3D": "global_average_pooling3d",
    "GlobalAvgPool1D": "global_average_pooling1d",
    "GlobalAvgPool2D": "global_average_pooling2d",
    "GlobalAvgPool3D": "global_average_pooling3d",
    "GlobalMaxPool1D": "global_max_pooling1d",
    "GlobalMaxPool2D": "global_max_pooling2d",
    "GlobalMaxPool3D": "global_max_pooling3d",
    "GlobalMaxPooling1D": "global_max_pooling1d",
    "GlobalMaxPooling2D": "global_max_pooling2d",
    "GlobalMaxPooling3D": "global_max_pooling3d",
    "GroupNormalization": "group_normalization",
    "Hashing": "hashing",
    "Identity": "identity",
    "InputLayer": "input_layer",
    "IntegerLookup": "integer_lookup",
    "LSTM": "lstm",
    "LSTMCell": "lstm_cell",
    "Lambda": "lambda",
    "Layer": "layer",
    "LayerNormalization": "layer_normalization",
    "LeakyReLU": "leaky_re_lu",
    "LocallyConnected1D": "locally_connected1d",  # Keras 2.15's rule
    "LocallyConnected2D": "locally_connected2d",  # Keras 2.15's rule
    "Masking": "masking",
    "MaxPool1D": "max_pooling1d",
    "MaxPool2D": "max_pooling2d",
    "MaxPool3D": "max_pooling3d",
    "MaxPooling1D": "max_pooling1d",
    "MaxPooling2D": "max_pooling2d",
    "MaxPooling3D": "max_pooling3d",
    "Maximum": "maximum",
    "Minimum": "minimum",
    "MultiHeadAttention": "multi_head_attention",
    "Multiply": "multiply",
    "Normalization": "normalization",
    "PReLU": "p_re_lu",
    "Permute": "permute",
    "RNN": "rnn",
    "RandomContrast": "random_contrast",
    "RandomFlip": "random_flip",
    "RandomRotation": "random_rotation",
    "RandomTranslation": "random_translation",
    "RandomZoom": "random_zoom",
    "ReLU": "re_lu",
    "RepeatVector": "repeat_vector",
    "Rescaling": "rescaling",
    "Reshape": "reshape",
    "Resizing": "resizing",
    "SeparableConv1D": "separable_conv1d",
    "SeparableConv2D": "separable_conv2d",
    "SeparableConvolution1D": "separable_conv1d",
    "SeparableConvolution2D": "separable_conv2d",
    "SimpleRNN": "simple_rnn",
    "SimpleRNNCell": "simple_rnn_cell",
    "Softmax": "softmax",
    "SpatialDropout1D": "spatial_dropout1d",
    "SpatialDropout2D": "spatial_dropout2d",
    "SpatialDropout3D": "spatial_dropout3d",
    "StackedRNNCells": "stacked_rnn_cells",
    "StringLookup": "string_lookup",
    "Subtract": "subtract",
    "TextVectorization": "text_vectorization",
    "TimeDistributed": "time_distributed",
    "UnitNormalization": "unit_normalization",
    "UpSampling1D": "up_sampling1d",
    "UpSampling2D": "up_sampling2d",
    "UpSampling3D": "up_sampling3d",
    "ZeroPadding1D": "zero_padding1d",
    "ZeroPadding2D": "zero_padding2d",
    "ZeroPadding3D": "zero_padding3d",
}

# Constructor arguments for the classes that need some (everything else takes none).
_ARGS = {
    "Activation": ("relu",),
    "AlphaDropout": (0.1,),
    "CategoryEncoding": (3,),
    "CenterCrop": (2, 2),
    "Dense": (2,),
    "Discretization": ([0.0],),
    "Dot": (1,),
    "Dropout": (0.1,),
    "Embedding": (3, 2),
    "GaussianDropout": (0.1,),
    "GaussianNoise": (0.1,),
    "Hashing": (3,),
    "Lambda": (lambda x: x,),
    "MultiHeadAttention": (2, 2),
    "Permute": ((1,),),
    "RandomContrast": (0.1,),
    "RandomRotation": (0.1,),
    "RandomTranslation": (0.1, 0.1),
    "RandomZoom": (0.1,),
    "RepeatVector": (2,),
    "Rescaling": (1.0,),
    "Reshape": ((2,),),
    "Resizing": (2, 2),
    "GRU": (2,),
    "GRUCell": (2,),
    "LSTM": (2,),
    "LSTMCell": (2,),
    "SimpleRNN": (2,),
    "SimpleRNNCell": (2,),
}


def _args(name: str) -> tuple[tuple, dict]:
    if name in _ARGS:
        return _ARGS[name], {}
    if name.startswith("SpatialDropout"):
        return (0.1,), {}
    if name == "InputLayer":
        return (), {"shape": (2,)}
    if name.startswith("Depthwise"):
        return (3,), {}
    if "Conv" in name or "LocallyConnected" in name:
        return (2, 3), {}
    if "Pool" in name and "Global" not in name:
        return (2,), {}
    if name == "RNN":
        return (layers.SimpleRNNCell(2),), {}
    if name == "StackedRNNCells":
        return ([layers.SimpleRNNCell(2)],), {}
    if name == "Bidirectional":
        return (layers.LSTM(2),), {}
    if name == "TimeDistributed":
        return (layers.Dense(2),), {}
    return (), {}


# OpLayer records a `distkeras.ops` call on KerasTensors; Keras names those nodes after
# the op ('add', 'add_1'), which tests/layers/test_keras_tensor.py checks.
_NOT_KERAS_LAYERS = {"OpLayer"}


def _layer_classes() -> list[str]:
    return sorted(
        n
        for n in dir(layers)
        if inspect.isclass(getattr(layers, n))
        and issubclass(getattr(layers, n), Layer)
        and n not in _NOT_KERAS_LAYERS
    )


def test_every_layer_class_has_a_recorded_keras_name():
    missing = [n for n in _layer_classes() if n not in KERAS_AUTO_NAMES]
    assert missing == [], f"record Keras's auto name for {missing}"


@pytest.mark.parametrize("cls_name", sorted(KERAS_AUTO_NAMES))
def test_layer_auto_name_is_keras(cls_name):
    backend.clear_session()
    args, kwargs = _args(cls_name)
    layer = getattr(layers, cls_name)(*args, **kwargs)
    assert layer.name == KERAS_AUTO_NAMES[cls_name]


# Keras 3.15.1's `keras.src.utils.naming.to_snake_case` on each input.
SNAKE_CASES = {
    "Conv2DTranspose": "conv2d_transpose",
    "MaxPooling2D": "max_pooling2d",
    "GlobalAveragePooling1D": "global_average_pooling1d",
    "MyHTTPServer": "my_http_server",
    "HTTPLayer2D": "http_layer2d",
    "ABC": "abc",
    "A1B": "a1b",
    "MeanIoU": "mean_io_u",
    "R2Score": "r2_score",
    "RMSprop": "rm_sprop",
    "AdamW": "adam_w",
    "_Private": "__private",
    "My_Layer": "my__layer",
    "Dense2": "dense2",
    "LSTM2Layer": "lstm2_layer",
    "My Layer!": "my_layer",
}


@pytest.mark.parametrize("name", sorted(SNAKE_CASES))
def test_to_snake_case_is_keras(name):
    assert naming.to_snake_case(name) == SNAKE_CASES[name]


def test_counter_per_name_and_clear_session():
    backend.clear_session()
    assert [layers.Dense(1).name for _ in range(3)] == ["dense", "dense_1", "dense_2"]
    assert layers.Conv2D(2, 3).name == "conv2d"  # each name counts on its own
    # An explicit name takes no number from the counter (Keras: 'dense', then 'dense_3').
    assert layers.Dense(1, name="dense").name == "dense"
    assert layers.Dense(1).name == "dense_3"
    backend.clear_session()
    assert layers.Dense(1).name == "dense"
    utils.clear_session()  # keras.utils.clear_session is the same reset
    assert layers.Dense(1).name == "dense"


def test_get_uid_shares_the_counter():
    # Keras 3.15.1: after one Dense, get_uid('dense') == 2, get_uid('foo') == 1, 2, and the
    # next Dense is 'dense_2'.
    backend.clear_session()
    layers.Dense(1)
    assert backend.get_uid("dense") == 2
    assert [backend.get_uid("foo"), backend.get_uid("foo")] == [1, 2]
    assert layers.Dense(1).name == "dense_2"


def test_counters_are_per_thread_as_in_keras():
    # Keras keeps its naming state in a threading.local: another thread starts afresh.
    backend.clear_session()
    layers.Dense(1)
    seen = []
    thread = threading.Thread(target=lambda: seen.append(layers.Dense(1).name))
    thread.start()
    thread.join()
    assert seen == ["dense"]
    assert layers.Dense(1).name == "dense_1"


def test_subclass_names_and_invalid_names():
    class MyLayer(Layer):
        pass

    class HTTPLayer2D(Layer):
        pass

    backend.clear_session()
    assert [MyLayer().name, MyLayer().name, HTTPLayer2D().name] == [
        "my_layer",
        "my_layer_1",
        "http_layer2d",
    ]
    with pytest.raises(ValueError, match="cannot contain character `/`. Received: name='a/b'"):
        layers.Dense(1, name="a/b")
    with pytest.raises(ValueError, match="must be a string.*Received: name=5"):
        layers.Dense(1, name=5)
    assert layers.Dense(1, name="").name == ""  # Keras keeps an explicit empty name


def _dense_model() -> models.Model:
    i = keras.Input((3,))
    return keras.Model(i, layers.Dense(1)(i))


def test_model_names_follow_keras_counters():
    # Keras 3.15.1 on the same sequence of calls. A Sequential traces an internal
    # functional graph (taking a `functional` name at each build) and, when built from
    # a shape, creates one `input_layer`; so the user's next Functional model is
    # `functional_1` with `input_layer_1`.
    backend.clear_session()
    m = _dense_model()
    assert (m.name, [la.name for la in m._layers]) == ("functional", ["input_layer", "dense"])

    backend.clear_session()
    s = models.Sequential([keras.Input((3,)), layers.Dense(2)])
    assert (s.name, [la.name for la in s.layers]) == ("sequential", ["dense"])
    m = _dense_model()
    assert (m.name, [la.name for la in m._layers]) == (
        "functional_1",
        ["input_layer_1", "dense_1"],
    )

    backend.clear_session()
    s = models.Sequential()
    s.add(keras.Input((3,)))
    s.add(layers.Dense(2))
    s.add(layers.Dense(2))  # a second build: another `functional`
    m = _dense_model()
    assert (s.name, m.name, [la.name for la in m._layers]) == (
        "sequential",
        "functional_2",
        ["input_layer_1", "dense_2"],
    )

    backend.clear_session()
    s = models.Sequential([layers.Dense(2)])
    m = _dense_model()
    assert m.name == "functional"  # an unbuilt Sequential has taken nothing yet
    s(np.ones((2, 3), np.float32))
    m = _dense_model()
    assert (m.name, [la.name for la in m._layers]) == (
        "functional_2",
        ["input_layer_2", "dense_2"],
    )
    assert models.Sequential().name == "sequential_1"


def test_subclassed_model_name():
    class MyModel(models.Model):
        def __init__(self):
            super().__init__()
            self.d = layers.Dense(1)

        def call(self, x):
            return self.d(x)

    class MySequential(models.Sequential):
        pass

    backend.clear_session()
    assert [MyModel().name, MyModel().name, MySequential().name] == [
        "my_model",
        "my_model_1",
        "my_sequential",
    ]


def test_custom_metric_loss_optimizer_names():
    class MyMetric(metrics.Metric):
        def update_state(self, *args, **kwargs):
            pass

        def result(self):
            return 0.0

    class MyLoss(losses.Loss):
        def call(self, y_true, y_pred):
            return y_pred

    class MyRMSprop(optimizers.RMSprop):
        def __init__(self):
            super().__init__(name=None)

    backend.clear_session()
    # Keras 3.15.1: 'my_metric', 'my_metric_1'; 'my_loss', 'my_loss_1'; a built-in with an
    # explicit default name keeps it ('auc' counts: 'auc', 'auc_1'; 'mean' does not).
    assert [MyMetric().name, MyMetric().name] == ["my_metric", "my_metric_1"]
    assert [MyLoss().name, MyLoss().name] == ["my_loss", "my_loss_1"]
    assert [metrics.Mean().name, metrics.Mean().name] == ["mean", "mean"]
    assert [metrics.AUC().name, metrics.AUC().name] == ["auc", "auc_1"]
    assert losses.MeanSquaredError().name == "mean_squared_error"
    assert [MyRMSprop().name, MyRMSprop().name] == ["my_rm_sprop", "my_rm_sprop_1"]


def test_get_layer_and_summary_use_keras_names():
    backend.clear_session()
    model = models.Sequential(
        [
            keras.Input((8, 8, 1)),
            layers.Conv2D(2, 3),
            layers.MaxPooling2D(),
            layers.Conv2DTranspose(2, 3),
            layers.GlobalAveragePooling2D(),
            layers.Dense(1),
        ]
    )
    assert [la.name for la in model.layers] == [
        "conv2d",
        "max_pooling2d",
        "conv2d_transpose",
        "global_average_pooling2d",
        "dense",
    ]
    assert model.get_layer("conv2d") is model.layers[0]
    assert model.get_layer("max_pooling2d") is model.layers[1]
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    assert "conv2d_transpose" in "\n".join(lines)


def _conv_model() -> models.Model:
    i = keras.Input((6, 6, 1))
    x = layers.Conv2D(2, 3)(i)
    x = layers.Conv2D(2, 3)(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    return keras.Model(i, layers.Dense(1)(x))


def test_json_round_trip_keeps_names():
    backend.clear_session()
    model = _conv_model()
    names = [la.name for la in model._layers]
    assert names == ["input_layer", "conv2d", "conv2d_1", "max_pooling2d", "flatten", "dense"]
    # Deserializing in the same session must neither rename nor collide.
    restored = models.model_from_json(model.to_json())
    assert [la.name for la in restored._layers] == names
    assert restored.name == model.name
    assert restored.get_layer("conv2d_1").kernel.shape == (3, 3, 2, 2)
    x = np.random.default_rng(0).normal(size=(2, 6, 6, 1)).astype(np.float32)
    restored.set_weights(model.get_weights())
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0))
    seq = models.Sequential([keras.Input((3,)), layers.Dense(2), layers.Dense(1)])
    again = models.model_from_json(seq.to_json())
    assert (again.name, [la.name for la in again.layers]) == (seq.name, ["dense_1", "dense_2"])


def test_weight_files_load_across_differently_named_models(tmp_path):
    # Weight paths are structural (class-based, as Keras's), so a second model whose
    # automatic names are `conv2d_2`, `conv2d_3`, ... loads the first one's file.
    backend.clear_session()
    first = _conv_model()
    path = str(tmp_path / "m.weights.h5")
    first.save_weights(path)
    second = _conv_model()
    assert second.layers[1].name == "conv2d_2"
    second.load_weights(path)
    for a, b in zip(first.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)


# Keras 3.15.1, right after `clear_session()`: the names of two instances of each class
# (built-ins whose default name is explicit keep it; the others count).
KERAS_OBJECT_NAMES = {
    "losses.BinaryCrossentropy": ("binary_crossentropy", "binary_crossentropy"),
    "losses.BinaryFocalCrossentropy": ("binary_focal_crossentropy", "binary_focal_crossentropy"),
    "losses.CategoricalCrossentropy": ("categorical_crossentropy", "categorical_crossentropy"),
    "losses.CategoricalFocalCrossentropy": (
        "categorical_focal_crossentropy",
        "categorical_focal_crossentropy",
    ),
    "losses.CategoricalHinge": ("categorical_hinge", "categorical_hinge"),
    "losses.CategoricalGeneralizedCrossEntropy": (
        "categorical_generalized_cross_entropy",
        "categorical_generalized_cross_entropy",
    ),
    "losses.Circle": ("circle", "circle"),
    "losses.CTC": ("ctc", "ctc"),
    "losses.CosineSimilarity": ("cosine_similarity", "cosine_similarity"),
    "losses.Dice": ("dice", "dice"),
    "losses.Hinge": ("hinge", "hinge"),
    "losses.Huber": ("huber_loss", "huber_loss"),
    "losses.KLDivergence": ("kl_divergence", "kl_divergence"),
    "losses.LogCosh": ("log_cosh", "log_cosh"),
    "losses.MeanAbsoluteError": ("mean_absolute_error", "mean_absolute_error"),
    "losses.MeanAbsolutePercentageError": (
        "mean_absolute_percentage_error",
        "mean_absolute_percentage_error",
    ),
    "losses.MeanSquaredError": ("mean_squared_error", "mean_squared_error"),
    "losses.MeanSquaredLogarithmicError": (
        "mean_squared_logarithmic_error",
        "mean_squared_logarithmic_error",
    ),
    "losses.Poisson": ("poisson", "poisson"),
    "losses.SparseCategoricalCrossentropy": (
        "sparse_categorical_crossentropy",
        "sparse_categorical_crossentropy",
    ),
    "losses.SquaredHinge": ("squared_hinge", "squared_hinge"),
    "losses.Tversky": ("tversky", "tversky"),
    "metrics.AUC": ("auc", "auc_1"),
    "metrics.Accuracy": ("accuracy", "accuracy"),
    "metrics.BinaryAccuracy": ("binary_accuracy", "binary_accuracy"),
    "metrics.BinaryCrossentropy": ("binary_crossentropy", "binary_crossentropy"),
    "metrics.BinaryIoU": ("binary_io_u", "binary_io_u_1"),
    "metrics.CategoricalAccuracy": ("categorical_accuracy", "categorical_accuracy"),
    "metrics.CategoricalCrossentropy": ("categorical_crossentropy", "categorical_crossentropy"),
    "metrics.CategoricalHinge": ("categorical_hinge", "categorical_hinge"),
    "metrics.CosineSimilarity": ("cosine_similarity", "cosine_similarity"),
    "metrics.F1Score": ("f1_score", "f1_score"),
    "metrics.FBetaScore": ("fbeta_score", "fbeta_score"),
    "metrics.FalseNegatives": ("false_negatives", "false_negatives_1"),
    "metrics.FalsePositives": ("false_positives", "false_positives_1"),
    "metrics.Hinge": ("hinge", "hinge"),
    "metrics.IoU": ("io_u", "io_u_1"),
    "metrics.KLDivergence": ("kl_divergence", "kl_divergence"),
    "metrics.LogCoshError": ("logcosh", "logcosh"),
    "metrics.Mean": ("mean", "mean"),
    "metrics.MeanAbsoluteError": ("mean_absolute_error", "mean_absolute_error"),
    "metrics.MeanAbsolutePercentageError": (
        "mean_absolute_percentage_error",
        "mean_absolute_percentage_error",
    ),
    "metrics.MeanIoU": ("mean_io_u", "mean_io_u_1"),
    "metrics.MeanMetricWrapper": ("mean_metric_wrapper", "mean_metric_wrapper_1"),
    "metrics.MeanSquaredError": ("mean_squared_error", "mean_squared_error"),
    "metrics.MeanSquaredLogarithmicError": (
        "mean_squared_logarithmic_error",
        "mean_squared_logarithmic_error",
    ),
    "metrics.OneHotIoU": ("one_hot_io_u", "one_hot_io_u_1"),
    "metrics.OneHotMeanIoU": ("one_hot_mean_io_u", "one_hot_mean_io_u_1"),
    "metrics.Poisson": ("poisson", "poisson"),
    "metrics.Precision": ("precision", "precision_1"),
    "metrics.R2Score": ("r2_score", "r2_score"),
    "metrics.Recall": ("recall", "recall_1"),
    "metrics.RootMeanSquaredError": ("root_mean_squared_error", "root_mean_squared_error"),
    "metrics.SparseCategoricalAccuracy": (
        "sparse_categorical_accuracy",
        "sparse_categorical_accuracy",
    ),
    "metrics.SparseCategoricalCrossentropy": (
        "sparse_categorical_crossentropy",
        "sparse_categorical_crossentropy",
    ),
    "metrics.SparseTopKCategoricalAccuracy": (
        "sparse_top_k_categorical_accuracy",
        "sparse_top_k_categorical_accuracy",
    ),
    "metrics.SquaredHinge": ("squared_hinge", "squared_hinge"),
    "metrics.Sum": ("sum", "sum"),
    "metrics.TopKCategoricalAccuracy": ("top_k_categorical_accuracy", "top_k_categorical_accuracy"),
    "metrics.TrueNegatives": ("true_negatives", "true_negatives_1"),
    "metrics.TruePositives": ("true_positives", "true_positives_1"),
    "optimizers.Adadelta": ("adadelta", "adadelta_1"),
    "optimizers.Adagrad": ("adagrad", "adagrad_1"),
    "optimizers.Adam": ("adam", "adam_1"),
    "optimizers.AdamW": ("adam_w", "adam_w_1"),
    "optimizers.Adamax": ("adamax", "adamax_1"),
    "optimizers.Ftrl": ("ftrl", "ftrl_1"),
    "optimizers.Lion": ("lion", "lion_1"),
    "optimizers.Nadam": ("nadam", "nadam_1"),
    "optimizers.RMSprop": ("rm_sprop", "rm_sprop_1"),
    "optimizers.SGD": ("sgd", "sgd_1"),
}
_OBJECT_ARGS = {
    "metrics.MeanIoU": (2,),
    "metrics.IoU": (2, [0]),
    "metrics.OneHotIoU": (2, [0]),
    "metrics.OneHotMeanIoU": (2,),
    "metrics.MeanMetricWrapper": (lambda y_true, y_pred: y_pred,),
}
_MODULES = {"metrics": metrics, "losses": losses, "optimizers": optimizers}
_BASES = {"metrics": metrics.Metric, "losses": losses.Loss, "optimizers": Optimizer}


def _object_classes() -> list[str]:
    out = []
    for kind, mod in _MODULES.items():
        for n in dir(mod):
            c = getattr(mod, n)
            if inspect.isclass(c) and issubclass(c, _BASES[kind]) and c is not _BASES[kind]:
                out.append(f"{kind}.{n}")
    return sorted(out)


def test_every_metric_loss_optimizer_has_a_recorded_keras_name():
    # LossFunctionWrapper is not public in Keras 3 (our wrapper takes the function's name).
    missing = [n for n in _object_classes() if n not in KERAS_OBJECT_NAMES]
    assert missing == ["losses.LossFunctionWrapper"]


@pytest.mark.parametrize("key", sorted(KERAS_OBJECT_NAMES))
def test_metric_loss_optimizer_auto_names_are_keras(key):
    kind, name = key.split(".")
    cls = getattr(_MODULES[kind], name)
    args = _OBJECT_ARGS.get(key, ())
    backend.clear_session()
    assert (cls(*args).name, cls(*args).name) == KERAS_OBJECT_NAMES[key]


# Keras 3.15.1: `[w.path for w in ...weights]` when a sublayer is first built in
# the `call` of a layer without `build`, or of a subclassed model: Keras opens the
# caller's name scope around its whole `__call__`, not only around `build`.
KERAS_CALL_SCOPED_PATHS = {
    "layer_called": ["outer/inner/dd/kernel", "outer/inner/dd/bias"],
    "subclassed_model": ["m/first/kernel", "m/first/bias", "m/inner/dd/kernel", "m/inner/dd/bias"],
    "functional": ["pre/kernel", "pre/bias", "inner/dd/kernel", "inner/dd/bias"],
    "sequential": ["seq/pre/kernel", "seq/pre/bias", "seq/inner/dd/kernel", "seq/inner/dd/bias"],
    "symbolic_on_its_own": ["inner/dd/kernel", "inner/dd/bias"],
}


class _Inner(Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = layers.Dense(2, name="dd")

    def call(self, x):
        return self.dense(x)


class _Outer(Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.inner = _Inner(name="inner")

    def call(self, x):
        return self.inner(x)


class _Model(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.first = layers.Dense(3, name="first")
        self.inner = _Inner(name="inner")

    def call(self, x):
        return self.inner(self.first(x))


def _called_paths(case):
    x = np.zeros((1, 3), dtype="float32")
    if case == "layer_called":
        obj = _Outer(name="outer")
        obj(x)
    elif case == "subclassed_model":
        obj = _Model(name="m")
        obj(x)
    elif case == "functional":
        inputs = keras.Input((3,))
        obj = keras.Model(inputs, _Inner(name="inner")(layers.Dense(3, name="pre")(inputs)))
    elif case == "sequential":
        obj = keras.Sequential([layers.Dense(3, name="pre"), _Inner(name="inner")], name="seq")
        obj(x)
    else:
        obj = _Inner(name="inner")
        obj(keras.Input((3,)))
    return [w.path for w in obj.weights]


@pytest.mark.parametrize("case", list(KERAS_CALL_SCOPED_PATHS))
def test_weights_built_in_a_call_are_named_under_the_caller(case):
    assert _called_paths(case) == KERAS_CALL_SCOPED_PATHS[case]


def test_compute_output_shape_trace_names_weights_under_the_layer():
    # Keras 3 raises here (no compute_output_shape); ours traces `call` in the same scope.
    layer = _Inner(name="inner")
    assert layer.compute_output_shape((None, 3)) == (None, 2)
    assert [w.path for w in layer.weights] == ["inner/dd/kernel", "inner/dd/bias"]
