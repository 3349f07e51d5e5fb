"""The abstract syntaxes the receiver accepts (CUBE contract §2)."""

from __future__ import annotations

from typing import Final

from pydicom._uid_dict import UID_dictionary

VERIFICATION: Final = "1.2.840.10008.1.1"

SIEMENS_PRIVATE_STORAGE: Final = frozenset(
    {
        "1.3.12.2.1107.5.99.3.11",  # Siemens AX frame sets
        "1.3.12.2.1107.5.9.1",  # Siemens CSA non-image
        "1.3.12.2.1107.5.99.3.10",  # Siemens CT/MR volume
    }
)


def _storage_sop_classes() -> frozenset[str]:
    """Every non-retired storage SOP class of pydicom's UID dictionary.

    A storage SOP class is a SOP Class whose keyword names a "...Storage" (including
    "...StorageForPresentation/ForProcessing"); Storage Commitment is a service, not one.
    """
    return frozenset(
        uid
        for uid, (_, kind, _, retired, keyword) in UID_dictionary.items()
        if kind == "SOP Class"
        and "Storage" in keyword
        and not keyword.startswith("StorageCommitment")
        and not retired
    )


STORAGE_SOP_CLASSES: Final = _storage_sop_classes() | SIEMENS_PRIVATE_STORAGE
ACCEPTED_ABSTRACT_SYNTAXES: Final = STORAGE_SOP_CLASSES | {VERIFICATION}
