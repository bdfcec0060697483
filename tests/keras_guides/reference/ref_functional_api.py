"""Keras 3 figures for test_functional_api.py."""

import keras

from tests.keras_guides import _data, _functional


def main():
    (x_train, y_train), (x_test, y_test) = _data.digits_flat()
    model = _functional.mnist_model(keras)
    model.set_weights(_data.initial_weights(model.get_weights()))
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=keras.optimizers.RMSprop(),
        metrics=["accuracy"],
    )
    h = model.fit(
        x_train, y_train, batch_size=64, epochs=2, validation_split=0.2, shuffle=False, verbose=0
    )
    print("mnist history", {k: [round(v, 5) for v in vals] for k, vals in h.history.items()})
    print("mnist test", model.evaluate(x_test, y_test, verbose=0))
    print("params", model.count_params())

    model = _functional.ticket_model(keras)
    model.set_weights(_data.initial_weights(model.get_weights(), seed=1))
    model.compile(
        optimizer=keras.optimizers.RMSprop(1e-3),
        loss={
            "priority": keras.losses.BinaryCrossentropy(from_logits=True),
            "department": keras.losses.CategoricalCrossentropy(from_logits=True),
        },
        loss_weights={"priority": 1.0, "department": 0.2},
    )
    (title, body, tags), (priority, department) = _functional.ticket_data()
    h = model.fit(
        {"title": title, "body": body, "tags": tags},
        {"priority": priority, "department": department},
        epochs=2,
        batch_size=32,
        shuffle=False,
        verbose=0,
    )
    print("ticket", {k: [round(v, 5) for v in vals] for k, vals in h.history.items()})
    print("ticket params", model.count_params())

    model = _functional.toy_resnet(keras)
    print(
        "resnet params",
        model.count_params(),
        [tuple(layer.output.shape) for layer in model.layers][-4:],
    )


if __name__ == "__main__":
    main()
