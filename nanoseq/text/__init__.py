"""Text models: vocabularies, language models, sequence to sequence and shared generation."""
