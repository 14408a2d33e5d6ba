"""The large generated datasets still produce the outputs recorded for them.

`fixtures/recipes.toml` keeps each dataset as its generator recipe plus the
SHA-256 of the generated inputs and of every file `xinf pipeline st` writes;
this regenerates each one and compares (about 10 s for all three).
"""
import subprocess
import sys

import pytest

from xinfinity.tools import recipes

NAMES = sorted(recipes.load_recipes())


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_generated_dataset_reproduces_its_recorded_outputs(name):
    r = subprocess.run([sys.executable, "-m", "xinfinity.cli", "fixtures", "check", name],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
