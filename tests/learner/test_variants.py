"""The variant table: every variant has one recipe, and a missing one fails loudly."""

from enum import StrEnum

import pytest

from maro.learner.maro import Variant
from maro.learner.variants import RECIPES, Recipe, check_recipes, recipe


def test_every_variant_has_a_recipe_and_only_the_full_method_has_every_mechanism():
    assert set(RECIPES) == set(Variant)
    full = recipe("maro")
    assert full.decompose and full.utility and full.role_weights and full.normalise == "role"
    ablations = {v: r for v, r in RECIPES.items() if v.startswith("maro-")}
    for variant, r in ablations.items():
        switched_off = [not r.decompose, not r.utility, not r.role_weights]
        assert sum(switched_off) == 1, f"{variant} removes exactly one mechanism"
    assert recipe("outcome").reward == "outcome" and not recipe("outcome").needs_values
    assert recipe("rae").keeps_baselines and not recipe("maro").keeps_baselines


def test_a_variant_without_a_recipe_stops_the_check():
    class More(StrEnum):
        MARO = "maro"
        NEW = "maro-new"

    with pytest.raises(RuntimeError, match="maro-new"):
        check_recipes(More, {"maro": RECIPES[Variant.MARO]})
    with pytest.raises(RuntimeError, match="gone"):
        check_recipes(More, {"maro": RECIPES[Variant.MARO], "maro-new": RECIPES[Variant.MARO],
                             "gone": Recipe("outcome", False, False, "none", False)})
    check_recipes(Variant, RECIPES)
