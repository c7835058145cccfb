"""The bundled data sets."""

from __future__ import annotations

from importlib import resources

import pandas as pd
import pytest

from bayesmeta import datasets

SHAPES = {"school": (56, 5), "thrombolytic": (38, 10), "bcg": (13, 13), "smoking": (24, 19), "gliomas": (68, 8),
          "alcohol": (48, 7), "berkey98": (5, 7), "dbs": (46, 12), "hyp": (10, 7), "p53": (6, 5),
          "fibrinogen": (31, 15), "hsls": (8, 10), "konstantopoulos2011": (56, 6), "berkey1998": (10, 9),
          "ishak2007": (46, 11), "hasselblad1998": (50, 7), "bangertdrowns2004": (48, 16)}


def test_every_file_is_catalogued_and_vice_versa():
    files = {p.name[:-4] for p in resources.files("bayesmeta.datasets").joinpath("data").iterdir()
             if p.name.endswith(".csv")}
    assert files == set(datasets.names()) == set(SHAPES)


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_load(name):
    frame = datasets.load(name)
    assert isinstance(frame, pd.DataFrame)
    assert frame.shape == SHAPES[name]
    loader = getattr(datasets, name)
    assert loader().equals(frame)
    assert "Columns:" in loader.__doc__ and "From R package" in datasets.describe(name)


def test_missing_values_are_nan():
    alcohol = datasets.load("alcohol")
    assert alcohol["se"].isna().sum() == 8


def test_unknown_name():
    with pytest.raises(KeyError, match="Unknown data set 'schools'; available: alcohol"):
        datasets.load("schools")
