from pathlib import Path

from app import CapsShouting
from palisade_plugin import Harness

harness = Harness.from_manifest(CapsShouting, Path(__file__).with_name("plugin.toml"))


def test_shouting_fires_and_short_acronyms_do_not():
    verdict = harness.score_text("WHY WOULD YOU EVER DO THAT")
    assert verdict.score > 0.3, verdict
    assert verdict.hits[0].rule == "caps-shouting"
    assert harness.score_text("OK, see you at NASA HQ").score == 0.0
    assert harness.score_text("LOL").score == 0.0


def test_a_bad_setting_is_named():
    import pytest
    from palisade_plugin import SettingError

    with pytest.raises(SettingError, match="min_ratio"):
        Harness(CapsShouting, {"min_ratio": "loud"})
