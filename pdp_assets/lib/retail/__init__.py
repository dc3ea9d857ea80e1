"""Retail medallion: the generator, the Spark lake paths, transforms and schemas."""
