"""Joint training: behaviour cloning of thoughts (LM loss) + contrastive embedding (InfoNCE), one forward."""
