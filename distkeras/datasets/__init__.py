"""Datasets, as `keras.datasets`: bundled small data and loaders for local files.

Nothing here downloads: `digits` ships inside the package, `mnist` reads files
the user has put on disk.
"""

from distkeras.datasets import digits, mnist
