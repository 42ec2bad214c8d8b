"""Images in: loading (OpenCV, pydicom), DICOM rendering, study discovery, preprocessing.

The bottom of the arrows: imports no other core package and never TensorFlow.
"""
