"""Raw nanopore signal: reading every file format, normalising, windowing, labelling, simulating.

Nothing in this package imports Keras or TensorFlow.
"""
