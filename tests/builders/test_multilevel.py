"""bm.multilevel: nested random intercepts of any depth."""

from __future__ import annotations

import pytest
from engine_tools import assert_graph_mode_is_reml
from reference_tools import assert_matches_metafor, load_fixture

import bayesmeta as bm

SCHOOL = load_fixture("school")
BUILDERS = load_fixture("builders")

pytestmark = pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS")


def test_two_levels_match_metafor():
    dat = bm.datasets.load("school")
    for levels in (["district", "study"], "district/study"):
        fit = bm.multilevel("effect ~ 1", dat, levels=levels, vi="var").fit("REML")
        assert_matches_metafor(fit, SCHOOL["twolevel_REML"])


def test_four_levels_match_metafor():
    ref = BUILDERS["multilevel_depth3"]
    import pandas as pd
    dat = pd.DataFrame(ref["data"])
    fit = bm.multilevel("yi ~ x", dat, levels=["country", "lab", "study"], vi="vi").fit("REML")
    assert fit.sigma2.index.tolist() == ["country", "country/lab", "country/lab/study"]
    assert_matches_metafor(fit, ref)


def test_graph_mode_is_reml():
    assert_graph_mode_is_reml(bm.multilevel("effect ~ 1", bm.datasets.load("school"), levels="district/study",
                                            vi="var"))


@pytest.mark.parametrize("levels, message", [([], "levels"), (["district", "district"], "twice"),
                                             (["district", "nope"], "nope")])
def test_bad_levels(levels, message):
    with pytest.raises(bm.SpecificationError, match=message):
        bm.multilevel("effect ~ 1", bm.datasets.load("school"), levels=levels, vi="var")
