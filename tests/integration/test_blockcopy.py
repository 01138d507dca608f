"""Bytes received into cache blocks land where they belong, wherever the
data host's writes happen to end.

fetch.c copies each piece of a body it receives into its block.  A
stall after K bytes makes the daemon receive the first K bytes of a
transfer on their own, so one copy ends, and the next begins, K bytes
into the transfer: odd K put both at odd addresses inside a block, or
across a block's end.
"""

import os

import pytest

from conftest import MiB, read_file, sha256, standin
from faultlib import bytes_sent, not_probe, rng_of, stats

SIZE = 8 * MiB + 777


def longer_than(n):
    """Range GETs other than the probe that ask for more than @n bytes
    (transfers cover one block or several: the stall must fall inside
    the one it hits)."""
    def pred(req):
        r = rng_of(req)
        return (not_probe(req) and r[1] is not None and
                r[1] - r[0] + 1 > n)
    return pred


@pytest.mark.parametrize("after", [1, 4095, 700001, MiB - 17, MiB + 4099])
def test_body_split_at_odd_offsets_lands_byte_exact(servers, cpfs, after):
    data = standin.make_bytes(SIZE, seed=after)
    oid = servers.add(data)
    m = cpfs(manifest=None)
    os.stat(m.path(oid))  # the probe of block 0 is not stalled
    servers.data.inject("stall", oid, when=longer_than(after), after=after,
                        seconds=0.3)
    assert sha256(read_file(m.path(oid))) == sha256(data)
    hit = servers.data.log.find(method="GET", id=oid,
                                pred=lambda r: r.fault == "stall")
    assert len(hit) == 1, hit
    start, end = rng_of(hit[0])
    # The stalled answer was read whole, in (at least) two pieces split
    # at @after, not cut short and asked for again.
    assert bytes_sent(hit, end - start + 1) == end - start + 1
    assert stats(m)["retries"] == 0
