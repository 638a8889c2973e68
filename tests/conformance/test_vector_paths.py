"""The whole conformance suite on the vector paths below this CPU's best. Kernels with a
hand-written form per instruction set (AVX-512, AVX2, portable; src/cpu) run in the
suite's own process only in the form the CPU picks; here every other test file runs
again in a child pytest with ctorch capped by CTORCH_CPU_ISA to each lower path, so
each form meets the same values, gradients, errors and bit-exact checks on one machine
(an AVX-512 CI host tests the AVX2 kernels too, an AVX2 host the portable ones).
test_vector_math.py, which already runs every path itself, is left out."""
from pathlib import Path

import pytest

from harness import rerun_capped

HERE = Path(__file__).resolve().parent


@pytest.mark.parametrize("isa", ["avx2", "baseline"])
def test_suite_on_a_lower_vector_path(isa):
    rerun_capped(HERE, isa, ignore=[HERE / "test_vector_paths.py", HERE / "test_vector_math.py"])
