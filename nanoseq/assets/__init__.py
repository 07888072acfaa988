"""Bundled pretrained models, one ``.keras`` file and one model card (``.md``) each."""
