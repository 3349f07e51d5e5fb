"""Who we are on the wire and in the files we write (PS3.7 D.3.3.2, PS3.10 7.1)."""

from __future__ import annotations

from typing import Final

IMPLEMENTATION_CLASS_UID: Final = "2.25.148169520763590460833828220343970430980"
"""A UUID-derived UID (PS3.5 B.2): ``2.25.`` + the integer of UUID
6f786964-6963-4f6d-8000-000000000004 ("oxidicom" in ASCII, version 4)."""

IMPLEMENTATION_VERSION_NAME: Final = "OXIDICOM_4_0"
"""At most 16 characters (SH)."""
