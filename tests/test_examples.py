"""Every example script runs (short chains) and prints the published numbers it reproduces."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))

#: Text each example must print (the published values it reproduces).
EXPECTED = {
    "network.py": ["p-val = 0.6463", "0.3985", "0.7024", "0.8659"],
    "dose_response.py": ["L2: RR at 12 g/day 1.080", "L1: RR at 12 g/day 1.048", "Figure saved to"],
    "longitudinal.py": ["107.5", "101.4", "117.3"],
    "arm_based.py": ["-0.7131", "0.94", "-0.7145"],
    "multivariate.py": ["0.3534", "-0.3392"],
    "ishak.py": ["-25.9047", "NUTS"],
    "school.py": ["0.1847", "NUTS", "0.0222", "0.2072", "0.0163", "0.0628", "-0.4502"],
    "location_scale.py": ["0.4308", "DriftWarning", "Figure saved to"],
    "prior_sensitivity.py": ["HalfNormal(0.05)", "Figure saved to", "diagnosis", "mu=-2.49, sigma=1.52",
                             "0.3378", "-0.7452"],
}


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_example_runs(script, tmp_path):
    env = dict(os.environ, BAYESMETA_QUICK="1", MPLBACKEND="Agg")
    done = subprocess.run([sys.executable, str(EXAMPLES / script), "--quick"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    for text in EXPECTED.get(script, []):
        assert text in done.stdout, f"{script} did not print {text!r}"
