"""Recurrent layers: RNN and its cells, SimpleRNN, LSTM, GRU, Bidirectional, TimeDistributed."""

from distkeras.layers.recurrent.bidirectional import Bidirectional
from distkeras.layers.recurrent.cells import StackedRNNCells
from distkeras.layers.recurrent.gru import GRU, GRUCell
from distkeras.layers.recurrent.lstm import LSTM, LSTMCell
from distkeras.layers.recurrent.rnn import RNN
from distkeras.layers.recurrent.simple_rnn import SimpleRNN, SimpleRNNCell
from distkeras.layers.recurrent.time_distributed import TimeDistributed

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "Bidirectional",
    "GRUCell",
    "LSTMCell",
    "SimpleRNN",
    "SimpleRNNCell",
    "StackedRNNCells",
    "TimeDistributed",
]
