"""The photo generator's shake: a point spread that conserves light and points one way."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from scanner.damage import shake_kernel


@given(st.floats(1.5, 15.0), st.floats(0.0, math.pi))
def test_a_shake_conserves_light_and_smears_along_its_angle(length: float, angle: float) -> None:
    kernel = shake_kernel(length, angle)
    assert kernel.shape[0] == kernel.shape[1] and kernel.shape[0] % 2 == 1
    assert (kernel >= 0).all()
    assert abs(float(kernel.sum()) - 1) < 1e-5
    # The smear is centred and point-symmetric: a shake forth and back is the same shake.
    assert np.allclose(kernel, kernel[::-1, ::-1], atol=1e-5)
    # Its spread along the angle is the segment's (sd L / sqrt(12), plus the bilinear
    # split's), and across it no more than the split's.
    ys, xs = np.mgrid[0 : kernel.shape[0], 0 : kernel.shape[1]] - kernel.shape[0] // 2
    along = xs * math.cos(angle) + ys * math.sin(angle)
    across = -xs * math.sin(angle) + ys * math.cos(angle)
    sd_along = math.sqrt(float((kernel * along**2).sum()))
    sd_across = math.sqrt(float((kernel * across**2).sum()))
    assert abs(sd_along - length / math.sqrt(12)) < 0.45
    assert sd_across < 0.45
