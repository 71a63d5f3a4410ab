"""User settings and recent files, as JSON in the platformdirs config folder (no Qt).

Read once when the window opens, written when it closes (and when the user
changes something in the settings dialog). Unknown or malformed values fall back
to defaults so a hand-edited file never stops the app from starting.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ardm_core.fileio import atomic_write_json
from ardm_core.paths import config_dir

SETTINGS_FILE = "settings.json"
MAX_RECENT = 10
COLOUR_MODES = ("order", "probability", "bits")
THEMES = ("light", "dark")


@dataclass
class Settings:
    font_size: int = 12  # points, editor font
    theme: str = "light"  # one of THEMES
    device: str = "auto"  # auto | cpu | cuda | mps (ardm_core.device.DEVICES)
    last_order: str = "confidence"  # decoding order shown when the app opens
    budget_k: int = 0  # step budget K; 0 = one character per step
    temperature: float = 0.7  # below 1: fills read better with a small model; 1.0 samples the model exactly
    top_p: float = 1.0
    seed: int = 0
    colour_mode: str = "order"  # one of COLOUR_MODES
    speed: int = 20  # playback steps per second (slider value)
    autosave_seconds: int = 5  # while typing goes on, autosave at least this often (pauses save sooner)
    model_path: str = ""  # last model folder opened by hand; "" = the shipped model
    recent_files: list[str] = field(default_factory=list)
    window_geometry: str = ""  # hex of QMainWindow.saveGeometry(), opaque here
    guide_seen: bool = False  # the first-run guide was shown once: never again

    def add_recent(self, path: str | Path) -> None:
        path = str(Path(path).resolve())
        self.recent_files = [path] + [p for p in self.recent_files if p != path]
        del self.recent_files[MAX_RECENT:]

    def clean(self) -> "Settings":
        """Clamp every field into its allowed range (a hand-edited file may hold anything)."""
        self.font_size = min(max(int(self.font_size), 6), 72)
        self.theme = self.theme if self.theme in THEMES else "light"
        self.colour_mode = self.colour_mode if self.colour_mode in COLOUR_MODES else "order"
        self.budget_k = max(int(self.budget_k), 0)
        self.temperature = min(max(float(self.temperature), 0.05), 5.0)
        self.top_p = min(max(float(self.top_p), 0.01), 1.0)
        self.speed = min(max(int(self.speed), 1), 1000)
        self.autosave_seconds = min(max(int(self.autosave_seconds), 1), 600)
        self.guide_seen = self.guide_seen is True
        self.recent_files = [str(p) for p in self.recent_files if isinstance(p, str)][:MAX_RECENT]
        return self


def settings_path() -> Path:
    return config_dir() / SETTINGS_FILE


def load_settings(path: Path | None = None) -> Settings:
    path = path or settings_path()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Settings()
    if not isinstance(raw, dict):
        return Settings()
    s = Settings()
    for f in fields(Settings):
        if f.name in raw:
            default = getattr(s, f.name)
            value = raw[f.name]
            if isinstance(default, bool) or type(value) is type(default) or (
                isinstance(default, float) and isinstance(value, int)
            ):
                setattr(s, f.name, value)
    try:
        return s.clean()
    except (TypeError, ValueError):
        return Settings()


def save_settings(settings: Settings, path: Path | None = None) -> None:
    path = path or settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, asdict(settings))
