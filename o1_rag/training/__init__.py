"""Training: recipes (TOML), the joint O1 model, the encoder of the thinker + encoder form, packing."""
