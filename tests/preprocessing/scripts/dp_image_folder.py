"""Fits on image_dataset_from_directory in 1 process or under mpirun; records the files read.

usage: dp_image_folder.py DATA_DIR OUT_PREFIX
Writes OUT_PREFIX.rank{r}.json with the files this rank read in each epoch and
in evaluate, the final weights and the loss history.
"""

import json
import sys

import distkeras
from distkeras import callbacks, layers
from distkeras.models import Sequential
from distkeras.preprocessing.image import ImageFolderDataset
from distkeras.utils import image_dataset_from_directory, set_random_seed

data, out = sys.argv[1], sys.argv[2]
comm = distkeras.distributed.initialize()
set_random_seed(1)
reads: list[str] = []
load_image = ImageFolderDataset.load_image


def recording(self, path):
    reads.append(path)
    return load_image(self, path)


ImageFolderDataset.load_image = recording
ds = image_dataset_from_directory(data, image_size=(6, 6), batch_size=4, seed=5, verbose=False)
assert reads == [], "indexing the directory must not read images"
record: dict = {}


def end_epoch(epoch, logs):
    record[f"epoch{epoch}"] = list(reads)
    reads.clear()


model = Sequential(
    [
        layers.Rescaling(1 / 255.0, input_shape=(6, 6, 3)),
        layers.Flatten(),
        layers.Dense(4, activation="tanh"),
        layers.Dense(2, activation="softmax"),
    ]
)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
hist = model.fit(
    ds, epochs=2, verbose=0, callbacks=[callbacks.LambdaCallback(on_epoch_end=end_epoch)]
)
reads.clear()
model.evaluate(ds, verbose=0)
record["evaluate"] = list(reads)
record["weights"] = [w.tolist() for w in model.get_weights()]
record["loss"] = hist.history["loss"]
with open(f"{out}.rank{comm.rank}.json", "w") as f:
    json.dump(record, f)
