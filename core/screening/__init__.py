"""Screening: a model applied to images and folders (`Screener`, `screen_study`), and the
result records every later step reads. Uses `core.imaging` and `core.models.architectures`.
"""
