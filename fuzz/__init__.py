"""Fuzzing of oxidicom's DICOM Upper Layer acceptor (see ``fuzz/README.md``)."""
