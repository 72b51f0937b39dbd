"""The pending-upload quota over real HTTP: an upload whose bytes are in the bucket stops
counting at once, whether the client calls complete or leaves the start to S3's event.

The report this reproduces: one user sending 160 uploads, 16 at a time, was refused most
of them (429) while its earlier uploads were already in S3, because a slot was given back
only when the resize claimed the image, two asynchronous hops after the bytes arrived.
Sixteen at a time never has more than 16 uploads without their bytes, under the limit of
20: no upload may be refused. The client does not retry here, so any refusal shows.
"""
from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.imagegen import cached_jpeg
from thumbgen.client import ApiError
from thumbgen.retry import NO_RETRY

UPLOADS, AT_ONCE = 64, 16


@pytest.mark.parametrize("complete", [True, False], ids=["complete", "s3-event-only"])
def test_sixteen_at_a_time_are_never_refused(stack, complete):
    client = stack.client_for(f"e2e-quota-{complete}", backoff=NO_RETRY)
    data = cached_jpeg(96, 72)
    outcomes: Counter[str] = Counter()

    def one(n: int) -> None:
        try:
            upload = client.upload(data, content_type="image/jpeg", filename=f"{n}.jpg", complete=complete)
            outcomes[f"put {upload.put_status}"] += 1
        except ApiError as refused:
            outcomes[f"{refused.status} {refused.code}"] += 1

    with ThreadPoolExecutor(AT_ONCE) as pool:
        list(pool.map(one, range(UPLOADS)))
    assert outcomes == {"put 200": UPLOADS}
