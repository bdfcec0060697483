"""Keras 3 figures for test_transfer_learning.py."""

import keras

from tests.keras_guides import _transfer

if __name__ == "__main__":
    print(_transfer.run(keras))
