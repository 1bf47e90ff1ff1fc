"""The redaction specification: boxes that move between keyframes, three modes, and the bounds
that keep a hostile or broken editor from asking for an unbounded rendering."""

import numpy as np
import pytest

from evidence.redaction import (
    MAX_KEYFRAMES_PER_BOX,
    Box,
    Keyframe,
    RedactionError,
    apply_boxes,
    parse_spec,
)


def _parse(boxes, mutes=()):
    return parse_spec(boxes=boxes, mutes=list(mutes), width=320, height=240, duration=10.0)


def test_a_box_drawn_once_is_one_keyframe_at_its_start():
    (box,), _ = _parse([{"start": 1, "end": 3, "x": 10, "y": 20, "w": 30, "h": 40}])
    assert box.keyframes == (Keyframe(1.0, 10, 20, 30, 40),) and box.mode == "black"
    assert box.rect_at(0.5) is None and box.rect_at(3.0) is None
    assert box.rect_at(2.9) == (10, 20, 30, 40)


def test_between_two_keyframes_the_box_moves_in_a_straight_line_rounded_outwards():
    (box,), _ = _parse(
        [
            {
                "start": 0,
                "end": 4,
                "mode": "blur",
                "keyframes": [
                    {"t": 3, "x": 110, "y": 10, "w": 50, "h": 50},  # given out of order
                    {"t": 1, "x": 10, "y": 10, "w": 50, "h": 50},
                ],
            }
        ]
    )
    assert [k.t for k in box.keyframes] == [1.0, 3.0]
    assert box.rect_at(0.0) == (10, 10, 50, 50)  # before the first: held there
    assert box.rect_at(2.0) == (60, 10, 50, 50)
    x, y, w, h = box.rect_at(1.5)  # 35.0 .. 85.0, exactly
    assert (x, w) == (35, 50)
    x, y, w, h = box.rect_at(1.01)  # 11.0 .. 61.0 and a little: never less than the line
    assert x <= 11 and x + w >= 61
    assert box.rect_at(3.5) == (110, 10, 50, 50)  # after the last: held there


@pytest.mark.parametrize(
    ("boxes", "message"),
    [
        ([{"start": 0, "end": 1, "x": 0, "y": 0, "w": 10, "h": 10, "mode": "erase"}], "blurred"),
        ([{"start": 2, "end": 1, "x": 0, "y": 0, "w": 10, "h": 10}], "start before end"),
        ([{"start": "nan", "end": 1, "x": 0, "y": 0, "w": 10, "h": 10}], "start before end"),
        ([{"start": 0, "end": 1, "x": 300, "y": 0, "w": 30, "h": 10}], "outside the 320x240"),
        ([{"start": 0, "end": 1, "keyframes": []}], "at least one keyframe"),
        ([{"start": 0, "end": 1, "keyframes": [{"t": 0, "x": 1}]}], "t, x, y, w and h"),
        (
            [
                {
                    "start": 0,
                    "end": 1,
                    "keyframes": [
                        {"t": 0.5, "x": 0, "y": 0, "w": 5, "h": 5},
                        {"t": 0.5, "x": 9, "y": 0, "w": 5, "h": 5},
                    ],
                }
            ],
            "two keyframes at the same time",
        ),
        (
            [
                {
                    "start": 0,
                    "end": 1,
                    "keyframes": [
                        {"t": i / 1000, "x": 0, "y": 0, "w": 5, "h": 5}
                        for i in range(MAX_KEYFRAMES_PER_BOX + 1)
                    ],
                }
            ],
            "at most",
        ),
        (["not a box"], "an object"),
        ({"start": 0}, "lists"),
    ],
)
def test_a_bad_box_is_refused_with_a_clear_message(boxes, message):
    with pytest.raises(RedactionError, match=message):
        _parse(boxes)


def test_each_mode_changes_only_the_pixels_inside_the_box():
    rng = np.random.default_rng(7)
    for mode in ("black", "pixelate", "blur"):
        original = rng.integers(0, 255, size=(240, 320, 3), dtype=np.uint8)
        image = original.copy()
        box = Box(0.0, 1.0, (Keyframe(0.0, 40, 50, 64, 48),), mode)
        apply_boxes(image, 0.5, [box])
        changed = np.any(image != original, axis=2)
        inside = np.zeros_like(changed)
        inside[50:98, 40:104] = True
        assert not changed[~inside].any(), mode
        assert changed[inside].mean() > 0.9, mode  # the noise inside is gone
        # Beyond recognition: what is left inside varies far less than the original did.
        assert image[inside].std() < original[inside].std() / 3, mode
        apply_boxes(image, 1.0, [box])  # at its end the box is no longer drawn
