"""Session shards: WebDataset-style tar shards of samples plus a Parquet index of the manifest.

One npz per frame stays the recorder's default; shards group many samples into one file so that
file systems, object stores and training input scale to fleets (docs/shards.md).
"""
