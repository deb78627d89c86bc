"""Built-in fine-tuning strategies."""
