"""The "why this character?" heat in exported GIF/PNG frames (no Qt): the same colours as the editor's overlay."""

from __future__ import annotations

from PIL import Image

from app.colours import EXPLAINED_OUTLINE, heat, over, ramp
from app.frames import HEADER_SIZE, FrameHeat, _font, render_frames
from app.run_record import RunOptions, RunRecord, StepRecord

TEXT = "It is a truth universally acknowledged, that a single man in possession of a good fortune."
MASKED = tuple(range(12, 18))


def _run() -> RunRecord:
    steps, cum = [], 0.0
    for i, p in enumerate(MASKED):
        cum += 1.5
        steps.append(StepRecord(index=i, positions=(p,), chars=TEXT[p], probs=(0.5,), entropy=(1.0,), topk=((),),
                                bits=(1.5,), step_bits=1.5, cumulative_bits=cum, network_calls=i + 1, ms=1.0))
    return RunRecord(text=TEXT, masked=MASKED, options=RunOptions(order="l2r"), steps=steps)


def _cell_corner(p: int) -> tuple[int, int]:
    """The top-left pixel of character p's cell (the first line holds positions 0..71)."""
    cw = round(_font().getlength("M"))
    return 12 + p * cw + 1, HEADER_SIZE + 18 + 6


def test_heat_colours_context_characters_from_the_explained_step_on(tmp_path):
    run = _run()
    # position 15 was filled at step index 3; the model looked at 0 ('I') most, 3 ('i') half as much,
    # and at 12 (filled at step 0) a little
    explained = FrameHeat(position=15, step=3, levels=((0, 1.0), (3, 0.5), (12, 0.25)),
                          legend="Why 't' (position 15, step 4): Aggregate, 0 - 0.4")
    with_heat, plain = tmp_path / "heat", tmp_path / "plain"
    assert list(render_frames(run, 6, with_heat, "png", explained))[-1] == 7
    list(render_frames(run, 6, plain, "png"))
    for i in range(7):
        a = Image.open(with_heat / f"frame_{i:04d}.png").convert("RGB")
        b = Image.open(plain / f"frame_{i:04d}.png").convert("RGB")
        assert a.height > b.height  # room for the legend line on every frame (a GIF keeps one size)
        same = a.crop((0, 0, b.width, b.height)).tobytes() == b.tobytes()
        assert same == (i <= 3), i  # frames before the step that filled 15 have no heat
        legend = {a.getpixel((x, y)) for x in range(a.width) for y in range(b.height, a.height)}
        assert (over(heat(1.0)) in legend) == (i > 3)
    a = Image.open(with_heat / "frame_0004.png").convert("RGB")
    assert a.getpixel(_cell_corner(0)) == over(heat(1.0))
    assert a.getpixel(_cell_corner(3)) == over(heat(0.5))
    # a filled character under heat: the heat over its step colour
    assert a.getpixel(_cell_corner(12)) == over(heat(0.25), over(ramp("order", 0 / 6)))
    assert a.getpixel(_cell_corner(15)) == EXPLAINED_OUTLINE  # the explained character is outlined
    assert a.getpixel(_cell_corner(1)) == (255, 255, 255)  # no weight, no colour


def test_heat_survives_the_gif_palette(tmp_path):
    run = _run()
    explained = FrameHeat(position=15, step=3, levels=((0, 1.0),), legend="Why 't'")
    gif = tmp_path / "a.gif"
    list(render_frames(run, 6, gif, "gif", explained))
    with Image.open(gif) as im:
        assert im.n_frames == 7
        im.seek(6)
        r, g, b = im.convert("RGB").getpixel(_cell_corner(0))
    want = over(heat(1.0))
    assert abs(r - want[0]) + abs(g - want[1]) + abs(b - want[2]) < 30
