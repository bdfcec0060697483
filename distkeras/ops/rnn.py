"""Fused recurrent loops and the embedding lookup, as differentiable ops.

`lstm`, `gru` and `simple_rnn` run a whole sequence in one primitive with a
hand-written backward through time (see `distkeras.backend.recurrent`);
`embedding_lookup` gathers table rows with a fast scatter-add backward.
"""

from distkeras.backend.embedding import embedding_lookup
from distkeras.backend.recurrent import gru, lstm, simple_rnn, unstack_time

__all__ = ["embedding_lookup", "gru", "lstm", "simple_rnn", "unstack_time"]
