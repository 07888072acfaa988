"""Nanopore basecalling: the CTC model, decoding, the streaming pipeline and training."""
