"""The strategy's requirements as rules: one registry (`base.all_rules`), one module per section."""
