"""Callbacks, as `keras.callbacks`.

All ranks run every hook; only the coordinator (`Callback.is_coordinator`)
prints, draws progress bars or writes files.
"""

from distkeras.callbacks.backup_and_restore import BackupAndRestore
from distkeras.callbacks.callback import Callback, CallbackList
from distkeras.callbacks.csv_logger import CSVLogger
from distkeras.callbacks.early_stopping import EarlyStopping
from distkeras.callbacks.history import History
from distkeras.callbacks.lambda_callback import LambdaCallback
from distkeras.callbacks.lr import LearningRateScheduler, ReduceLROnPlateau
from distkeras.callbacks.lr_warmup import LearningRateWarmup
from distkeras.callbacks.model_checkpoint import ModelCheckpoint
from distkeras.callbacks.progbar_logger import ProgbarLogger
from distkeras.callbacks.remote_monitor import RemoteMonitor
from distkeras.callbacks.swap_ema_weights import SwapEMAWeights
from distkeras.callbacks.tensorboard import TensorBoard
from distkeras.callbacks.terminate_on_nan import TerminateOnNaN
