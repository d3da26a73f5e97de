"""Real images that ship inside installed wheels, read offline and checked.

- ``animals()``: the 10,000 animal silhouettes (28x28, 10 classes) of the MIT-licensed
  ``animal-shape-mnist`` package, version 0.39. Its own loader imports tensorflow, so
  the gzipped pickles are read directly: the sha256 of each file is checked first, and
  the unpickler only accepts the numpy array reconstruction it needs.
- ``digits()``: scikit-learn's 1,797 8x8 handwritten digits.

``split_indices`` gives fixed, class-balanced train / val / test index sets so that
held-out evaluation never sees a training image.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import os
import pickle
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import DataError

ANIMAL_CLASSES = ("bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse",
                  "sheep", "zebra")
_ANIMAL_FILES = {
    "animal_data_version_3.gz": "68a30346781a0984f839463a4615d2decb899d1ce65091bb92586311754a34ce",
    "animal_label_version_3.gz": "dec8dba7c469830989fbab46825021a08a38470753a512f27ada847eced97b57",
}
SPLITS = ("train", "val", "test")
_FRACTIONS = {"train": (0.0, 0.7), "val": (0.7, 0.8), "test": (0.8, 1.0)}


def cache_dir() -> Path:
    """Where generated datasets are cached (``AUTOLOSS_ZERO_CACHE`` or ~/.cache)."""
    root = os.environ.get("AUTOLOSS_ZERO_CACHE")
    path = Path(root) if root else Path.home() / ".cache" / "autoloss-zero"
    path.mkdir(parents=True, exist_ok=True)
    return path


class _ArrayUnpickler(pickle.Unpickler):
    """Accepts only what a pickled numpy array needs."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            if module.startswith("numpy._core") or module.startswith("numpy.core"):
                from numpy._core import multiarray

                return getattr(multiarray, name)
            return getattr(np, name)
        raise DataError(f"refusing to unpickle {module}.{name}")


def _animal_dir() -> Path:
    spec = importlib.util.find_spec("animal_shape_mnist")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("package animal-shape-mnist==0.39 is not installed")
    for loc in spec.submodule_search_locations:
        d = Path(loc) / "data" / "Animal Shape"
        if d.is_dir():
            return d
    raise DataError("animal-shape-mnist is installed but its data folder is missing")


def _load_checked(path: Path, sha256: str) -> np.ndarray:
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != sha256:
        raise DataError(f"{path.name}: sha256 {digest} differs from the pinned {sha256}")
    with gzip.open(io.BytesIO(raw)) as f:
        arr = _ArrayUnpickler(f).load()
    if not isinstance(arr, np.ndarray):
        raise DataError(f"{path.name}: expected a numpy array")
    return arr


@lru_cache(maxsize=1)
def animals() -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (10000, 28, 28), labels int64 (10000,)), 1,000 per class."""
    d = _animal_dir()
    names = list(_ANIMAL_FILES)
    x = _load_checked(d / names[0], _ANIMAL_FILES[names[0]])
    y = _load_checked(d / names[1], _ANIMAL_FILES[names[1]]).astype(np.int64)
    if x.shape != (10000, 28, 28) or y.shape != (10000,):
        raise DataError(f"unexpected animal data shapes {x.shape}, {y.shape}")
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


@lru_cache(maxsize=1)
def digits() -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 (1797, 8, 8) scaled to 0..255, labels int64 (1797,))."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.clip(d.images * (255.0 / 16.0), 0, 255).astype(np.uint8)
    y = d.target.astype(np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


SOURCES = {"animals": animals, "digits": digits}


def source_images(source: str) -> tuple[np.ndarray, np.ndarray]:
    if source not in SOURCES:
        raise ValueError(f"unknown image source {source!r}; known: {', '.join(SOURCES)}")
    return SOURCES[source]()


def split_indices(labels: np.ndarray, split: str, seed: int = 0) -> np.ndarray:
    """Class-balanced, fixed indices of a split: 70% train, 10% val, 20% test per class."""
    if split not in _FRACTIONS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    lo, hi = _FRACTIONS[split]
    rng = np.random.default_rng([seed, 20260101])
    out = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        out.append(idx[int(round(lo * len(idx))) : int(round(hi * len(idx)))])
    return np.sort(np.concatenate(out))
