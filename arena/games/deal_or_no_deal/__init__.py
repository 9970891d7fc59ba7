"""deal_or_no_deal-v1: two negotiators with private item values divide a pool (Lewis et al. 2017).

The package is the game: `rules` (registered on import), `text` (its action format, parser and
prompt), `heuristic` (its value estimate for learning)."""

from maro.arena.games.deal_or_no_deal import heuristic  # noqa: F401  (attaches the value heuristic)
from maro.arena.games.deal_or_no_deal.rules import DealOrNoDeal  # registers the game

__all__ = ["DealOrNoDeal"]
