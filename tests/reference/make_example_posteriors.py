"""Reference posterior means of the examples' sampled models, from long chains.

Runs each example with ``BAYESMETA_REFERENCE=1`` (nutpie, chains of 4 x 2500 draws after
1000 tuning steps, target acceptance 0.95, seed 2: independent of the tests' quick runs,
PyMC with seed 1) and ``--quick`` (for
the parts that do not sample), reads the posterior means and MCSEs the example prints
(``examples/_example.py``, ``posterior_means``), checks each run's health (no divergences,
R-hat <= 1.01) and writes ``fixtures/example_posteriors.json``, which
``tests/test_examples.py`` compares the quick runs with. From the repository root:

    .venv/bin/python tests/reference/make_example_posteriors.py [school.py ...]

With script names, only their entries are replaced.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from test_examples import EXAMPLES, REFERENCE, SCRIPTS, read_posterior_means


def reference_run(script: str) -> dict:
    """The posterior-mean blocks of one example run with long chains."""
    env = dict(os.environ, BAYESMETA_QUICK="1", BAYESMETA_REFERENCE="1", MPLBACKEND="Agg")
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([sys.executable, str(EXAMPLES / script), "--quick"], cwd=tmp, env=env,
                              capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{script} failed:\n{done.stderr[-3000:]}")
    blocks = read_posterior_means(done.stdout)
    for tag, block in blocks.items():
        if block["divergences"] or block["max_rhat"] > 1.01:
            raise RuntimeError(f"{script}, {tag}: unhealthy reference run {block}")
    return blocks


def main(scripts: list[str]) -> None:
    """Run the examples given (default: all) and write their entries into the fixture."""
    examples = json.loads(REFERENCE.read_text())["examples"] if REFERENCE.exists() else {}
    for script in scripts or SCRIPTS:  # the fixture is rewritten after each script
        blocks = reference_run(script)
        if blocks:
            examples[script] = blocks
        else:
            examples.pop(script, None)
        print(f"{script}: {', '.join(blocks) or 'no posterior means'}", flush=True)
        fixture = {
            "generated_by": "tests/reference/make_example_posteriors.py",
            "sampling": {"sampler": "nutpie", "draws": 2500, "tune": 1000, "chains": 4, "target_accept": 0.95,
                         "random_seed": 2},
            "versions": {name: version(name) for name in ("bayesmeta", "pymc", "nutpie", "arviz")},
            "examples": dict(sorted(examples.items())),
        }
        REFERENCE.write_text(json.dumps(fixture, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
