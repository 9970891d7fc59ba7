"""What each MARO variant does, as one table (shared MARO.md's variants): the credit assignment and
the branch sampler read a variant's `Recipe`, never its name, so a variant is one enum member and
one row here. A member without a row stops the import."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from maro.learner.maro import Variant


@dataclass(frozen=True)
class Recipe:
    """How one variant turns a seat's final outcome into per-behavior advantages and weights."""

    reward: Literal["outcome", "rae", "td"]
    """`outcome`: every behavior gets the seat's outcome z; `rae`: z minus the role's EMA baseline;
    `td`: the utility estimator's values split z over the behaviors (and give direct utility)."""
    decompose: bool
    """(`td`) credit each behavior with its TD(lambda) share of z; off: each gets z itself."""
    utility: bool
    """(`td`) mix in the behavior's direct utility with weight alpha; off: alpha = 0."""
    normalise: Literal["none", "role", "batch"]
    """Advantages: rewards as they are, normalised per (game, role) group, or over the whole batch."""
    role_weights: bool
    """Weight every (game, role) to the same total (exponent beta); off: every weight is 1."""

    @property
    def needs_values(self) -> bool:
        """Whether the credit asks the utility estimator for values."""
        return self.reward == "td"

    @property
    def keeps_baselines(self) -> bool:
        """Whether the credit carries role baselines from update to update."""
        return self.reward == "rae"


RECIPES: dict[Variant, Recipe] = {
    Variant.OUTCOME: Recipe("outcome", decompose=False, utility=False, normalise="none", role_weights=False),
    Variant.RAE: Recipe("rae", decompose=False, utility=False, normalise="none", role_weights=False),
    Variant.MARO: Recipe("td", decompose=True, utility=True, normalise="role", role_weights=True),
    Variant.MARO_NO_DECOMPOSE: Recipe("td", decompose=False, utility=True, normalise="role", role_weights=True),
    Variant.MARO_NO_UTILITY: Recipe("td", decompose=True, utility=False, normalise="role", role_weights=True),
    Variant.MARO_NO_ROLES: Recipe("td", decompose=True, utility=True, normalise="batch", role_weights=False),
}


def check_recipes(variants: Iterable[str], recipes: Mapping[str, Recipe]) -> None:
    """Raise if a variant has no recipe or a recipe no variant (run at import on the real table)."""
    missing = sorted(set(variants) - set(recipes))
    extra = sorted(set(recipes) - set(variants))
    if missing or extra:
        raise RuntimeError(f"MARO variants without a recipe: {missing}; recipes without a variant: {extra}")


def recipe(variant: Variant | str) -> Recipe:
    return RECIPES[Variant(variant)]


check_recipes(Variant, RECIPES)
