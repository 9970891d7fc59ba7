"""Does it transfer? Offline evaluation of instruction following and math reasoning on items
generated from seeds (nothing is downloaded), an adapter against the frozen base."""
