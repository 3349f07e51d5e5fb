"""oxidicom: a DICOM receiver for ChRIS, and the sans-IO DICOM Upper Layer it is built on."""

__version__ = "4.0.0"
