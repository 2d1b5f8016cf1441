"""ALL-CAPS shouting: a high share of uppercase letters in a long enough message."""

from palisade_plugin import Category, Heuristic, RuleHit, Verdict, caps_ratio, export_heuristic


class CapsShouting(Heuristic):
    def __init__(self, settings):
        self.min_ratio = settings.float("min_ratio", 0.7)
        self.min_letters = settings.int("min_letters", 10)
        self.max_weight = settings.float("max_weight", 0.4)

    def score(self, event):
        ratio, letters = caps_ratio(event.content)
        if letters < self.min_letters or ratio < self.min_ratio:
            return Verdict.clean()
        # Scale from half the cap at the threshold to the full cap at 100 % caps.
        span = max(1.0 - self.min_ratio, 1e-7)
        weight = self.max_weight * (0.5 + 0.5 * (ratio - self.min_ratio) / span)
        detail = f"{ratio * 100:.0f}% of {letters} letters uppercase"
        return Verdict.from_hits([RuleHit("caps-shouting", weight, Category.TOXIC, detail)])


WitWorld = export_heuristic(CapsShouting)
