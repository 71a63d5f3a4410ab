"""The colour scales of a run (no Qt): one place for the editor, its legend and the exported frames.

Each mode maps t in [0, 1] to an RGBA colour drawn behind a character, light
enough that black text stays readable on it. Every scale is ordered in
lightness as well as hue, so it reads for colour-blind viewers too:

- order: early -> late steps, blue -> green -> yellow (a viridis-like ramp);
- probability: unlikely -> sure, cividis (dark blue -> grey -> yellow), made for
  red-green colour blindness (Nuñez et al., 2018), instead of red -> green;
- bits: few -> many bits of surprise, clear -> magenta.
"""

from __future__ import annotations

RGBA = tuple[int, int, int, int]

SCALES: dict[str, tuple[RGBA, ...]] = {
    "order": ((68, 119, 220, 110), (60, 190, 140, 110), (240, 200, 40, 130)),
    "probability": ((0, 34, 78, 130), (65, 77, 108, 120), (124, 123, 120, 110), (187, 174, 109, 120),
                    (255, 233, 69, 140)),
    "bits": ((255, 255, 255, 0), (200, 30, 120, 170)),
}

# what the two ends of each scale mean, for legends
ENDS: dict[str, tuple[str, str, str]] = {
    "order": ("Step order", "early", "late"),
    "probability": ("Probability", "unlikely (0)", "sure (1)"),
    "bits": ("Bits", "0 bits", "8+ bits"),
}

LAST_STEP_OUTLINE = (230, 90, 0)  # the characters of the latest step: underlined / outlined in orange


def ramp(mode: str, t: float) -> RGBA:
    """The colour of t in [0, 1] on this mode's scale (piecewise linear between its stops)."""
    stops = SCALES.get(mode)
    if stops is None:
        raise ValueError(f"unknown colour mode {mode!r}; choose from {sorted(SCALES)}")
    t = min(1.0, max(0.0, t if t == t else 0.0))  # NaN -> 0
    x = t * (len(stops) - 1)
    i = min(int(x), len(stops) - 2)
    u = x - i
    a, b = stops[i], stops[i + 1]
    return tuple(round(p + (q - p) * u) for p, q in zip(a, b))  # type: ignore[return-value]


def over(rgba: RGBA, background: tuple[int, int, int] = (255, 255, 255)) -> tuple[int, int, int]:
    """The opaque colour of rgba drawn over a background (for images without alpha)."""
    al = rgba[3] / 255
    return tuple(round(c * al + g * (1 - al)) for c, g in zip(rgba[:3], background))  # type: ignore[return-value]

# "Why this character?": context characters in translucent orange by weight, the explained one outlined in blue
HEAT = (255, 120, 0)
EXPLAINED_OUTLINE = (40, 110, 230)


def heat(level: float) -> RGBA:
    """The heat colour of a weight scaled to [0, 1]: more weight, more opaque."""
    level = min(1.0, max(0.0, level if level == level else 0.0))  # NaN -> 0
    return (*HEAT, int(25 + 200 * level))
