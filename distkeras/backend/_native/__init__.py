"""C sources of the compiled time loops; `setup.py` builds them as `_kernels` (see `native.py`)."""
