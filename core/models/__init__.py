"""Models: architectures and custom layers, the registry and model cards, probability
calibration, Grad-CAM and the scope check. Uses `core.imaging`; TensorFlow is imported lazily.
"""
