"""Quota arithmetic: 413 past the limit, -1 for unlimited."""

from __future__ import annotations

import pytest

from tinystack.image import quotas
from tinystack.image.errors import QuotaExceeded

LIMITS = quotas.Limits(image_count_total=2, image_size_total=100, image_count_uploading=1, image_stage_total=50,
                       image_size_cap=1000, members=2, properties=3, tags=-1)


def test_enforce() -> None:
    quotas.enforce("image_count_total", 2, 1, 1)
    with pytest.raises(QuotaExceeded) as err:
        quotas.enforce("image_count_total", 2, 2, 1)
    assert err.value.status == 413
    assert "image_count_total is over limit of 2 due to current usage 2 and delta 1" in err.value.message
    quotas.enforce("image_size_total", -1, 10**15, 10**15)
    quotas.enforce("image_size_total", 0, 0, 0)


def test_remaining() -> None:
    assert quotas.remaining(100, 30) == 70
    assert quotas.remaining(100, 130) == 0
    assert quotas.remaining(-1, 5) is None


def test_per_image_limits() -> None:
    quotas.enforce_per_image(LIMITS, members=2, properties=3, tags=10_000)
    for kwargs in ({"members": 3}, {"properties": 4}):
        with pytest.raises(QuotaExceeded):
            quotas.enforce_per_image(LIMITS, **kwargs)
