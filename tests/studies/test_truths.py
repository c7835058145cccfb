"""Parameter values by table label: the labels, round trips and the errors."""

import numpy as np
import pytest
from cases import berkey_model

import bayesmeta as bm
from bayesmeta.errors import SpecificationError
from bayesmeta.studies.truths import complete_truths, truth_arrays, truth_labels


@pytest.fixture(scope="module")
def school():
    return bm.MetaModel("effect ~ 1", bm.datasets.load("school"), vi="var", random="~ 1 | district/study")


def test_labels_are_those_of_the_result_table(school):
    berkey = berkey_model()
    for model in (school, berkey):
        assert truth_labels(model.design, model.param) == model.fit().table().index.tolist()


def test_a_fit_table_round_trips_to_its_parameters():
    model = berkey_model()
    fit = model.fit()
    beta, values = truth_arrays(model.design, model.param, fit.table()["estimate"])
    np.testing.assert_allclose(beta, fit.coef.to_numpy())
    np.testing.assert_allclose(values["tau2"][0], fit.tau2.to_numpy())
    np.testing.assert_allclose(values["rho"][0], fit.rho.to_numpy())


def test_single_component_by_family_name_and_fixed_components_filled():
    model = bm.MetaModel("logrr ~ 1", bm.datasets.load("bcg"), vi="logrrvar")
    assert complete_truths(model.design, model.param, {"beta[Intercept]": -0.7, "tau2": 0.3}) == \
        {"beta[Intercept]": -0.7, "tau2[row]": 0.3}
    fixed = bm.MetaModel("effect ~ 1", bm.datasets.load("school"), vi="var", random="~ 1 | district/study",
                         fixed={"sigma2": [None, 0.01]})
    values = complete_truths(fixed.design, fixed.param, {"beta[Intercept]": 0.1, "sigma2[district]": 0.05})
    assert values["sigma2[district/study]"] == pytest.approx(0.01)


@pytest.mark.parametrize("truths, message", [
    ({"beta[Intercept]": 0.1, "sigma2[district]": 0.05}, r"no value for sigma2\[district/study\]"),
    ({"beta[Intercept]": 0.1, "sigma2[district]": 0.05, "sigma2[district/study]": 0.03, "tau2": 1},
     r"unknown parameter 'tau2'"),
    ({"beta[Intercept]": 0.1, "sigma2[district]": -0.05, "sigma2[district/study]": 0.03}, "is a variance"),
    ({"beta[Intercept]": np.nan, "sigma2[district]": 0.05, "sigma2[district/study]": 0.03}, "finite"),
    ([0.1, 0.05, 0.03], "expected a dict"),
])
def test_bad_values_are_named(school, truths, message):
    with pytest.raises(SpecificationError, match=message):
        complete_truths(school.design, school.param, truths)


def test_a_fixed_component_cannot_be_given_another_value():
    fixed = bm.MetaModel("effect ~ 1", bm.datasets.load("school"), vi="var", random="~ 1 | district/study",
                         fixed={"sigma2": [None, 0.01]})
    with pytest.raises(SpecificationError, match="fixed at 0.01"):
        complete_truths(fixed.design, fixed.param,
                        {"beta[Intercept]": 0.1, "sigma2[district]": 0.05, "sigma2[district/study]": 0.02})
