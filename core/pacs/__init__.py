"""DICOM networking: receive images (C-STORE SCP), screen them, send results back.

- `inbox`: validated, atomic storage of received files under DIR/<Study>/<SOP>.dcm
- `listener`: the C-STORE / C-ECHO service (pynetdicom)
- `screening_adapter`: the one place that calls the screening engine
- `results_dicom`: the Structured Report and the secondary capture of a result
- `outbox` + `sender`: persistent, retried delivery (C-STORE SCU)

Nothing here imports Qt; TensorFlow is reached only through the adapter.
"""
