"""Training: datasets and patient-grouped splits, augmentation, the training loop, metrics and
site calibration. Uses screening, models and imaging; never reading.
"""
