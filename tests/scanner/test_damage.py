"""The photo generator's shake: a point spread as long as asked, along the angle asked."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from scanner.damage import shake_kernel


@given(st.floats(1.5, 15.0), st.floats(0.0, math.pi))
def test_a_shake_smears_its_whole_length_along_its_angle(length: float, angle: float) -> None:
    kernel = shake_kernel(length, angle)
    assert kernel.shape[0] == kernel.shape[1] and kernel.shape[0] % 2 == 1
    # The smear is centred and point-symmetric: a shake forth and back is the same shake.
    assert np.allclose(kernel, kernel[::-1, ::-1], atol=1e-5)
    # Its spread along the angle is the whole segment's, ends included, at any angle (sd
    # L / sqrt(12), and the bilinear split's 1/6 in variance), and across it no more than
    # the split's.
    ys, xs = np.mgrid[0 : kernel.shape[0], 0 : kernel.shape[1]] - kernel.shape[0] // 2
    along = xs * math.cos(angle) + ys * math.sin(angle)
    across = -xs * math.sin(angle) + ys * math.cos(angle)
    sd_along = math.sqrt(float((kernel * along**2).sum()))
    sd_across = math.sqrt(float((kernel * across**2).sum()))
    assert abs(sd_along - math.sqrt(length**2 / 12 + 1 / 6)) < 0.06
    assert sd_across < 0.45
