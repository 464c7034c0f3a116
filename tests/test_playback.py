from __future__ import annotations

import pytest

from voxengine.playback import PlaybackTracker


def test_locate_maps_played_seconds_to_items() -> None:
    t = PlaybackTracker()
    assert t.locate(1.0) is None
    t.written("a", 0.5)
    t.written("a", 0.5)
    t.written("b", 2.0)
    assert t.queued == pytest.approx(3.0)
    pos = t.locate(0.25)
    assert pos is not None
    assert (pos.item_id, pos.played, pos.finished) == ("a", 0.25, False)
    pos = t.locate(1.5)
    assert pos is not None
    assert (pos.item_id, pos.played) == ("b", pytest.approx(0.5))
    pos = t.locate(9.0)
    assert pos is not None
    assert (pos.item_id, pos.played, pos.finished) == ("b", 2.0, True)
    t.written("c", 0.0)
    t.reset()
    assert t.locate(0.1) is None
    assert t.queued == 0.0
