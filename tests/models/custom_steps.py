"""Models with a user-written `train_step` or `compute_loss`, shared by the unit tests,
the mpirun script (scripts/custom_step_train.py) and the Ray job (`fit_job`)."""

from __future__ import annotations

import numpy as np

N_SAMPLES, N_FEATURES, N_CLASSES = 103, 6, 3


def make_data():
    """103 samples: batch 20 leaves an uneven last batch (3 samples over 2 ranks)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N_SAMPLES, N_FEATURES)).astype("float32")
    y = rng.integers(0, N_CLASSES, N_SAMPLES)
    return x, y


def custom_step_model_class():
    """A Model whose train_step is the Keras 3 guide's: GradientTape + optimizer.apply."""
    import distkeras
    from distkeras import layers, metrics

    class CustomStep(distkeras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.hidden = layers.Dense(16, activation="tanh")
            self.out = layers.Dense(N_CLASSES, activation="softmax")
            self.acc = metrics.SparseCategoricalAccuracy(name="acc")
            self.steps_seen = 0

        def call(self, x, training=False):
            return self.out(self.hidden(x))

        def train_step(self, data):
            self.steps_seen += 1
            x, y = data
            with distkeras.GradientTape() as tape:
                y_pred = self(x, training=True)
                loss = self.compute_loss(y=y, y_pred=y_pred)
            grads = tape.gradient(loss, self.trainable_weights)
            self.optimizer.apply(grads, self.trainable_weights)
            for m in self.metrics:
                if m.name == "loss":
                    m.update_state(loss)
                else:
                    m.update_state(y, y_pred)
            return {m.name: m.result() for m in self.metrics}

    return CustomStep


def distill_model_class():
    """A student trained by an overridden compute_loss (compile has no loss).

    The loss is Keras's distillation example's: alpha * student loss +
    (1 - alpha) * KL(teacher || student) on temperature-softened outputs,
    with the teacher a fixed random projection of the inputs.
    """
    import distkeras
    from distkeras import layers, losses, ops

    class Distill(distkeras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.hidden = layers.Dense(16, activation="tanh")
            self.logits = layers.Dense(N_CLASSES)
            rng = np.random.default_rng(42)
            self.teacher_w = rng.normal(size=(N_FEATURES, N_CLASSES)).astype("float32")
            self.student_loss = losses.SparseCategoricalCrossentropy(from_logits=True)
            self.kl = losses.KLDivergence()

        def call(self, x, training=False):
            return self.logits(self.hidden(x))

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            t = 2.0
            teacher = ops.softmax(ops.convert_to_tensor(np.asarray(x) @ self.teacher_w) / t)
            student = ops.softmax(y_pred / t)
            return 0.3 * self.student_loss(y, y_pred) + 0.7 * self.kl(teacher, student) * t * t

    return Distill


def two_optimizers_model_class():
    """A GAN-like step: two weight groups, two optimizers, two `apply` calls per step."""
    import distkeras
    from distkeras import layers, optimizers

    class TwoOptimizers(distkeras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.body = layers.Dense(16, activation="tanh")
            self.head = layers.Dense(N_CLASSES, activation="softmax")
            self.head_optimizer = optimizers.SGD(0.05, momentum=0.9)

        def call(self, x, training=False):
            return self.head(self.body(x))

        def train_step(self, data):
            x, y = data
            for weights, opt in (
                (self.body.trainable_weights, self.optimizer),
                (self.head.trainable_weights, self.head_optimizer),
            ):
                with distkeras.GradientTape() as tape:
                    y_pred = self(x, training=True)
                    loss = self.compute_loss(y=y, y_pred=y_pred)
                opt.apply(tape.gradient(loss, weights), weights)
            self.metrics[0].update_state(loss, sample_weight=len(x))
            return self.compute_metrics(x, y, y_pred)

    return TwoOptimizers


def build(kind: str, seed: int, optimizer: str = "adam"):
    """A compiled model of `kind` ('custom_step', 'two_optimizers' or 'compute_loss')."""
    from distkeras.utils import set_random_seed

    set_random_seed(seed)
    if kind == "custom_step":
        model = custom_step_model_class()()
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    elif kind == "two_optimizers":
        model = two_optimizers_model_class()()
        model.compile(
            optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"]
        )
    else:
        model = distill_model_class()()
        model.compile(optimizer=optimizer, metrics=["accuracy"])
    return model


def fit(kind: str, rank: int = 0, epochs: int = 3):
    """Trains on make_data(); returns (weights, history)."""
    x, y = make_data()
    # Different seeds per rank: the first broadcast from rank 0 must make them agree.
    model = build(kind, 3 + 1000 * rank)
    hist = model.fit(x, y, batch_size=20, epochs=epochs, verbose=0)
    return [w.tolist() for w in model.get_weights()], hist.history


def fit_job(config):
    """Ray job: fit in default mode, then in deterministic mode, on every rank."""
    import distkeras.distributed as dist

    comm = dist.get_communicator()
    default = fit(config["kind"], comm.rank)
    dist.initialize(deterministic=True)
    det = fit(config["kind"], comm.rank)
    return {"size": comm.size, "default": default, "det": det}
