"""The Palisade plugin SDK for Python: write a heuristic rule as a class, build it
into a WebAssembly component with componentize-py (`scripts/build-plugins`), and
test it natively with pytest (`Harness`).

A rule is a class with `__init__(self, settings)` and `score(self, event) ->
Verdict`. `export_heuristic(Rule)` makes the class componentize-py exports as
the world: it scores a batch one event at a time, builds the rule once per
instance from the manifest's `[settings]` (through the host's `config`), and
turns the rule's verdicts into the WIT types. Nothing here imports the
generated bindings (`wit_world`) until the component runs, so the same rule
runs unchanged under pytest. The component is built without WASI
(`componentize-py --stub-wasi`): `print()` and a rule's traceback go to the host log,
and there are no files, sockets or clocks (`host.now_ms` is the clock).

This module owns the Python-side types and helpers; it must not hold state
between calls beyond the rule instance (the host may recycle instances).
"""

from __future__ import annotations

import sys
import tomllib
import traceback
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Callable, Optional

__all__ = [
    "Category",
    "Event",
    "Harness",
    "Heuristic",
    "RuleHit",
    "Settings",
    "SettingError",
    "Verdict",
    "caps_ratio",
    "export_heuristic",
    "log",
]


class Category(Enum):
    """The categories a hit can point to (the WIT `category` enum, same order)."""

    LOW_RISK = 0
    SPAM = 1
    TOXIC = 2
    TARGETED_HARASSMENT = 3
    HATE_SPEECH = 4
    VIOLENCE = 5
    SEXUAL = 6


@dataclass
class Event:
    """One event as a rule sees it (the WIT `event` record's fields). In the
    component the rule gets the generated record, which has the same fields."""

    content: str
    event_id: str = "test-event"
    event_type: str = "message"
    platform: str = "test"
    user_id: str = "test-user"
    author_id: Optional[str] = None
    channel_id: Optional[str] = None
    timestamp_ms: int = 0
    metadata: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class RuleHit:
    """One rule that fired: its name, how strongly (0..1), what it points to, and why."""

    rule: str
    weight: float
    category: Optional[Category] = None
    detail: Optional[str] = None


@dataclass
class Verdict:
    """A rule's verdict on one event: score in [0, 1], its category, and the hits."""

    score: float = 0.0
    category: Optional[Category] = None
    hits: list[RuleHit] = field(default_factory=list)

    @staticmethod
    def clean() -> "Verdict":
        return Verdict()

    @staticmethod
    def from_hits(hits: list[RuleHit]) -> "Verdict":
        """The strongest hit's weight plus a quarter of the others', clamped to
        [0, 1]; the category of the strongest hit (as the Rust SDK does)."""
        if not hits:
            return Verdict()
        top = max(hits, key=lambda h: h.weight)
        extra = sum(h.weight for h in hits) - top.weight
        return Verdict(min(max(top.weight + 0.25 * extra, 0.0), 1.0), top.category, list(hits))


class SettingError(ValueError):
    """A manifest setting that is present but not of the asked type."""


class Settings:
    """The plugin's `[settings]`, typed on read. Lists arrive newline-joined."""

    def __init__(self, get: Callable[[str], Optional[str]]):
        self._get = get

    def str(self, key: str, default: str) -> str:
        raw = self._get(key)
        return default if raw is None else raw

    def float(self, key: str, default: float) -> float:
        return self._parse(key, default, float, "a number")

    def int(self, key: str, default: int) -> int:
        return self._parse(key, default, int, "a whole number")

    def bool(self, key: str, default: bool) -> bool:
        raw = self._get(key)
        if raw is None:
            return default
        if raw in ("true", "false"):
            return raw == "true"
        raise SettingError(f"setting `{key}`: expected true or false, got {raw!r}")

    def list(self, key: str, default: list[str]) -> list[str]:
        raw = self._get(key)
        return list(default) if raw is None else [line for line in raw.split("\n") if line]

    def _parse(self, key, default, parse, what):
        raw = self._get(key)
        if raw is None:
            return default
        try:
            return parse(raw)
        except ValueError:
            raise SettingError(f"setting `{key}`: expected {what}, got {raw!r}") from None


class Heuristic:
    """Base class of a rule (optional: any class with the same two methods works)."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def score(self, event: Event) -> Verdict:
        raise NotImplementedError


def log(level: str, message: str) -> None:
    """Write to the host's log, tagged with the plugin's name (`level`: trace,
    debug, info, warn, error). Under pytest it prints."""
    try:
        from wit_world.imports import host
    except ImportError:
        print(f"[{level}] {message}")
        return
    host.log(host.Level[level.upper()], message)


def caps_ratio(text: str) -> tuple[float, int]:
    """The share of cased letters that are uppercase, and how many cased letters
    there are (the Rust SDK's `text::caps_ratio`)."""
    upper = cased = 0
    for c in text:
        if c.isupper():
            upper += 1
            cased += 1
        elif c.islower():
            cased += 1
    return (upper / cased, cased) if cased else (0.0, 0)


def export_heuristic(rule_class: type) -> type:
    """The world class for componentize-py: `WitWorld = export_heuristic(MyRule)`."""

    class WitWorld:
        rule = None

        def score(self, events):
            from wit_world.imports import host, types

            try:
                if WitWorld.rule is None:
                    # The component has no WASI: print() goes to the host log.
                    sys.stdout = _HostLog(host, host.Level.INFO)
                    sys.stderr = _HostLog(host, host.Level.WARN)
                    WitWorld.rule = rule_class(Settings(host.config))
                return [_to_wit(types, WitWorld.rule.score(event)) for event in events]
            except BaseException as e:
                # Logged before the call traps, so the host's fault quotes its last line.
                host.log(host.Level.ERROR, _traceback(e))
                raise

    return WitWorld


def _traceback(e: BaseException) -> str:
    # Without the source lines: reading them needs files, and the component has none.
    frames = [
        f'  File "{frame.f_code.co_filename}", line {line}, in {frame.f_code.co_name}'
        for frame, line in traceback.walk_tb(e.__traceback__)
    ]
    header = ["Traceback (most recent call last):"] if frames else []
    return "\n".join([*header, *frames, f"{type(e).__name__}: {e}"])


class _HostLog:
    """A text stream that writes whole lines to the host log."""

    def __init__(self, host, level):
        self.host, self.level, self.pending = host, level, ""

    def write(self, text: str) -> int:
        *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            self.host.log(self.level, line)
        return len(text)

    def flush(self) -> None:
        if self.pending:
            self.host.log(self.level, self.pending)
            self.pending = ""


def _to_wit(types, verdict: Verdict):
    def category(c):
        return None if c is None else types.Category(c.value)

    hits = [types.RuleHit(h.rule, float(h.weight), category(h.category), h.detail) for h in verdict.hits]
    return types.Verdict(float(verdict.score), category(verdict.category), hits)


class Harness:
    """Run a rule natively with the settings of its manifest, as the host would."""

    def __init__(self, rule_class: type, settings: Optional[dict[str, object]] = None):
        values = {k: _setting_text(v) for k, v in (settings or {}).items()}
        self.rule = rule_class(Settings(values.get))

    @staticmethod
    def from_manifest(rule_class: type, manifest: str | Path) -> "Harness":
        """`manifest`: the path of the rule's `plugin.toml`."""
        with open(manifest, "rb") as f:
            return Harness(rule_class, tomllib.load(f).get("settings", {}))

    def score_text(self, text: str) -> Verdict:
        return self.rule.score(Event(text))

    def score(self, event: Event) -> Verdict:
        return self.rule.score(event)


def _setting_text(value: object) -> str:
    # As the host hands settings over: lists newline-joined, booleans lower-case.
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
