"""The bundled data sets."""

from __future__ import annotations

import hashlib
from importlib import resources

import pandas as pd
import pytest

from bayesmeta import datasets

SHAPES = {"school": (56, 5), "thrombolytic": (38, 10), "bcg": (13, 13), "smoking": (24, 19), "gliomas": (68, 8),
          "alcohol": (48, 7), "berkey98": (5, 7), "dbs": (46, 12), "hyp": (10, 7), "p53": (6, 5),
          "fibrinogen": (31, 15), "hsls": (8, 10), "konstantopoulos2011": (56, 6), "berkey1998": (10, 9),
          "ishak2007": (46, 11), "hasselblad1998": (50, 7), "bangertdrowns2004": (48, 16), "habitat": (276, 5)}


#: SHA-256 (first 16 hex digits) of every bundled file, line endings normalised: the references
#: (metafor fixtures, published tables) were computed from exactly these values.
CHECKSUMS = {
    "alcohol": "2225123a4e85cf2c", "bangertdrowns2004": "e5b9c880bf90783b", "bcg": "c50c5022a5ccdbd7",
    "berkey1998": "0c8373bc7cd97ab0", "berkey98": "27ce56cbf80cefe3", "dbs": "18c9706387363906",
    "fibrinogen": "917ddd03da195c65", "gliomas": "579414e25fcfa3d2", "habitat": "b4c3f25606c2ce22", "hasselblad1998": "4776c91f09a7bec3",
    "hsls": "0c98fb8984863b8c", "hyp": "f22b1ee43ed81d4f", "ishak2007": "304d76bca3bbe768",
    "konstantopoulos2011": "756fa9f9c60ee699", "p53": "b865c5800f03bd44", "school": "9b7d5ee543fdbce4",
    "smoking": "1863929a4a1024bb", "thrombolytic": "5d5abbf42b33ac15",
}


@pytest.mark.parametrize("name", sorted(CHECKSUMS))
def test_file_contents_are_unchanged(name):
    raw = resources.files("bayesmeta.datasets").joinpath("data", f"{name}.csv").read_bytes()
    assert hashlib.sha256(raw.replace(b"\r\n", b"\n")).hexdigest()[:16] == CHECKSUMS[name]


def test_every_file_is_catalogued_and_vice_versa():
    files = {p.name[:-4] for p in resources.files("bayesmeta.datasets").joinpath("data").iterdir()
             if p.name.endswith(".csv")}
    assert files == set(datasets.names()) == set(SHAPES) == set(CHECKSUMS)


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_load(name):
    frame = datasets.load(name)
    assert isinstance(frame, pd.DataFrame)
    assert frame.shape == SHAPES[name]
    loader = getattr(datasets, name)
    assert loader().equals(frame)
    source = datasets.describe(name)
    assert "Columns:" in loader.__doc__ and ("From R package" in source or source.startswith("Simulated"))


def test_missing_values_are_nan():
    alcohol = datasets.load("alcohol")
    assert alcohol["se"].isna().sum() == 8


def test_unknown_name():
    with pytest.raises(KeyError, match="Unknown data set 'schools'; available: alcohol"):
        datasets.load("schools")


def test_habitat_is_the_seeded_simulation_with_vcalc_blocks():
    from coscale_cases import simulate

    import bayesmeta as bm

    expected, blocks = simulate(2026, n_studies=150, missing=0.1)
    dat = datasets.load("habitat")
    pd.testing.assert_frame_equal(dat, expected, check_exact=True)
    V = bm.vcalc("vi", "study", obs="outcome", rho=0.4, data=dat)
    assert len(V.blocks) == len(blocks)
    assert all(a.shape == b.shape and abs(a - b).max() < 1e-15 for a, b in zip(V.blocks, blocks))
