"""The strategy's requirements as rules: one registry (`base.all_rules`), one rule a file
(`sk###_<slug>.py`, found by its name), what a family of rules shares beside them."""
