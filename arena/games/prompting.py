"""The prompt shape every game uses: rules, one worked example turn, then the current turn."""

from __future__ import annotations


def with_worked_example(rules: str, example: str, reply: str, current: str) -> list[dict]:
    """Chat messages: small models follow an action format only after seeing it used once."""
    return [
        {"role": "system", "content": rules},
        {"role": "user", "content": example},
        {"role": "assistant", "content": reply},
        {"role": "user", "content": current},
    ]
