"""Every example script runs (short chains) and prints the published numbers it reproduces;
the posterior means it prints agree with long reference runs within their Monte Carlo error."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))
#: Posterior means and MCSEs of the examples' sampled models from long runs
#: (tests/reference/make_example_posteriors.py).
REFERENCE = Path(__file__).resolve().parent / "reference" / "fixtures" / "example_posteriors.json"

#: Text each example must print (the published values it reproduces; REML/ML numbers are exact).
EXPECTED = {
    "network.py": ["p-val = 0.6463", "0.3985", "0.7024", "0.8659"],
    "dose_response.py": ["L2: RR at 12 g/day 1.080", "L1: RR at 12 g/day 1.048", "Figure saved to"],
    "longitudinal.py": ["107.5", "101.4", "117.3"],
    "arm_based.py": ["-0.7131", "0.94", "-0.7145"],
    "multivariate.py": ["0.3534", "-0.3392"],
    "ishak.py": ["-25.9047", "NUTS"],
    "school.py": ["0.1847", "NUTS", "0.0222", "0.2072", "0.0163", "0.0628", "-0.4502"],
    "location_scale.py": ["0.4308", "DriftWarning", "Figure saved to"],
    "coscale.py": ["31.5086", "0.7555", "QM(df = 1) = 6.7743", "Figure saved to"],
    "prior_sensitivity.py": ["HalfNormal(0.05)", "Figure saved to", "diagnosis", "mu=-2.49, sigma=1.52",
                             "0.3378", "-0.7452"],
}

_HEADER = re.compile(r"^Posterior means \(MCSE\), (?P<tag>.+): (?P<div>\d+) divergences, max R-hat (?P<rhat>[\d.]+)$")
_ROW = re.compile(r"^  (?P<name>\S.*?)\s+(?P<mean>-?\d+\.\d+) \((?P<mcse>\d+\.\d+)\)$")


def read_posterior_means(text: str) -> dict[str, dict]:
    """The blocks printed by ``examples/_example.py``'s ``posterior_means``.

    Returns
    -------
    dict
        Per tag: ``divergences``, ``max_rhat`` and ``means`` (per parameter, ``mean`` and ``mcse``).
    """
    blocks, current = {}, None
    for line in text.splitlines():
        header, row = _HEADER.match(line), _ROW.match(line)
        if header:
            current = {"divergences": int(header["div"]), "max_rhat": float(header["rhat"]), "means": {}}
            blocks[header["tag"]] = current
        elif row and current is not None:
            current["means"][row["name"]] = {"mean": float(row["mean"]), "mcse": float(row["mcse"])}
        else:
            current = None
    return blocks


def assert_posterior_means_match(printed: dict[str, dict], reference: dict[str, dict], k: float = 4.0) -> None:
    """Each printed mean within k sqrt(MCSE^2 + MCSE_ref^2) of the reference run's, from a healthy run
    (no divergences, R-hat <= 1.01), with the same models and parameters."""
    assert set(printed) == set(reference), (sorted(printed), sorted(reference))
    for tag, block in printed.items():
        assert block["divergences"] == 0, (tag, block["divergences"])
        assert block["max_rhat"] <= 1.01, (tag, block["max_rhat"])
        assert set(block["means"]) == set(reference[tag]["means"]), tag
        for name, got in block["means"].items():
            ref = reference[tag]["means"][name]
            tol = k * (got["mcse"] ** 2 + ref["mcse"] ** 2) ** 0.5
            assert abs(got["mean"] - ref["mean"]) < tol, f"{tag}, {name}: {got} vs reference {ref}"


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_example_runs(script, tmp_path):
    env = dict(os.environ, BAYESMETA_QUICK="1", MPLBACKEND="Agg")
    env.pop("BAYESMETA_REFERENCE", None)
    done = subprocess.run([sys.executable, str(EXAMPLES / script), "--quick"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    for text in EXPECTED.get(script, []):
        assert text in done.stdout, f"{script} did not print {text!r}"
    reference = json.loads(REFERENCE.read_text())["examples"]
    assert_posterior_means_match(read_posterior_means(done.stdout), reference.get(script, {}))


def test_posterior_means_are_read_and_compared():
    """The reader and the comparison on printed text: a mean 4.5 combined MCSEs away fails."""
    text = ("\nPosterior means (MCSE), three-level model: 0 divergences, max R-hat 1.004\n"
            "  beta[Intercept]         0.1808 (0.0050)\n"
            "  tau2[outcome | trial: AL]  0.03575 (0.00060)\n\nnext table\n  x  1.0000 (0.1000)\n")
    printed = read_posterior_means(text)
    means = printed["three-level model"]["means"]
    assert means == {"beta[Intercept]": {"mean": 0.1808, "mcse": 0.005},
                     "tau2[outcome | trial: AL]": {"mean": 0.03575, "mcse": 0.0006}}
    reference = {"three-level model": {"means": {"beta[Intercept]": {"mean": 0.1808 + 0.0195, "mcse": 0.0015},
                                                 "tau2[outcome | trial: AL]": {"mean": 0.0357, "mcse": 0.0002}}}}
    assert_posterior_means_match(printed, reference)  # 0.0195 < 4 sqrt(0.005^2 + 0.0015^2) = 0.0209
    reference["three-level model"]["means"]["beta[Intercept]"]["mean"] = 0.1808 + 0.0235
    with pytest.raises(AssertionError, match="beta"):
        assert_posterior_means_match(printed, reference)
    printed["three-level model"]["max_rhat"] = 1.02
    with pytest.raises(AssertionError, match="1.02"):
        assert_posterior_means_match(printed, reference)
