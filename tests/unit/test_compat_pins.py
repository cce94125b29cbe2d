"""Every Faust and mode method a patch in streams/compat replaces is the one it was written for."""

from __future__ import annotations

import pytest

from streams.compat.pins import PINS, Pin, source_digest


@pytest.mark.parametrize("pin", PINS, ids=[p.qualname for p in PINS])
def test_each_patched_method_is_the_version_its_patch_was_written_against(pin: Pin) -> None:
    assert source_digest(pin.module, pin.qualname) == pin.digest, (
        f"{pin.module}.{pin.qualname} changed (a library upgrade?): streams/compat/{pin.patch} "
        "replaces it; read the new source, adapt the patch (or drop it if the library fixed "
        "the bug), then put the new digest in streams/compat/pins.py"
    )


def test_a_changed_method_gives_another_digest() -> None:
    getmany = source_digest("faust.transport.consumer", "Consumer.getmany")
    assert getmany != source_digest("faust.transport.consumer", "Consumer.perform_seek")
    with pytest.raises(LookupError, match=r"no Consumer\.no_such_method"):
        source_digest("faust.transport.consumer", "Consumer.no_such_method")
