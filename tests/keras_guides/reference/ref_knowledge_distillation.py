"""Keras 3 figures for test_knowledge_distillation.py."""

import keras

from tests.keras_guides import _data, _distill


def main():
    (x_train, y_train), (x_test, y_test) = _data.digits_images()
    teacher = _distill.teacher(keras)
    teacher.set_weights(_data.initial_weights(teacher.get_weights(), seed=0))
    student = _distill.student(keras)
    student.set_weights(_data.initial_weights(student.get_weights(), seed=1))
    scratch = keras.models.clone_model(student)
    scratch.set_weights(student.get_weights())
    sce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    teacher.compile(
        keras.optimizers.Adam(), sce, metrics=[keras.metrics.SparseCategoricalAccuracy()]
    )
    teacher.fit(x_train, y_train, epochs=3, batch_size=64, shuffle=False, verbose=0)
    print("teacher", teacher.evaluate(x_test, y_test, verbose=0))
    distiller = _distill.distiller_class(keras)(student=student, teacher=teacher)
    distiller.compile(
        optimizer=keras.optimizers.Adam(),
        metrics=[keras.metrics.SparseCategoricalAccuracy()],
        student_loss_fn=sce,
        distillation_loss_fn=keras.losses.KLDivergence(),
        alpha=0.1,
        temperature=10,
    )
    h = distiller.fit(x_train, y_train, epochs=3, batch_size=64, shuffle=False, verbose=0)
    print("distill loss", h.history["loss"])
    print("distilled", distiller.evaluate(x_test, y_test, verbose=0, return_dict=True))
    scratch.compile(
        keras.optimizers.Adam(), sce, metrics=[keras.metrics.SparseCategoricalAccuracy()]
    )
    scratch.fit(x_train, y_train, epochs=3, batch_size=64, shuffle=False, verbose=0)
    print("scratch", scratch.evaluate(x_test, y_test, verbose=0))


if __name__ == "__main__":
    main()
