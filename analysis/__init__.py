"""Turn study result tables into statistical evidence. Never imports torch or Ray."""
