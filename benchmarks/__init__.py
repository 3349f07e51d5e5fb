"""Side-by-side performance measurements of DICOM C-STORE receivers.

`generate` writes the test data, `run` pushes it into each receiver in turn and reports
throughput, CPU and memory. See README.md for the commands and what each number means.
"""
