"""Byte-exact vectors of PS3.8 PDUs, items and sub-items, laid out field by field.

Written from the PS3.8 §9.3 and PS3.7 Annex D layouts (one commented line per field), not
from oxidicom's encoder: the tests decode each vector to the value below it and encode that
value back to the same bytes.
"""

from __future__ import annotations

A_ASSOCIATE_RQ = bytes.fromhex(
    "01"  # PDU type A-ASSOCIATE-RQ
    "00"  # reserved
    "00000117"  # PDU length 279
    "0001"  # protocol version: bit 0
    "0000"  # reserved
    "4F525448414E43202020202020202020"  # called AE title 'ORTHANC', space padded to 16
    "53544F52455343552020202020202020"  # calling AE title 'STORESCU'
    "0000000000000000000000000000000000000000000000000000000000000000"  # reserved (32 bytes)
    "10000015"  # application context item 0x10, reserved, length 21
    "312E322E3834302E31303030382E332E312E312E31"  # 1.2.840.10008.3.1.1.1
    "2000002E"  # presentation context item 0x20, reserved, length 46
    "01000000"  # context ID 1, 3 reserved bytes
    "30000011"  # abstract syntax sub-item 0x30, reserved, length 17
    "312E322E3834302E31303030382E312E31"  # 1.2.840.10008.1.1 (Verification)
    "40000011"  # transfer syntax sub-item 0x40, reserved, length 17
    "312E322E3834302E31303030382E312E32"  # 1.2.840.10008.1.2 (Implicit VR LE)
    "2000004D"  # presentation context item 0x20, length 77
    "03000000"  # context ID 3, 3 reserved bytes
    "30000019"  # abstract syntax sub-item, length 25
    "312E322E3834302E31303030382E352E312E342E312E312E32"  # CT Image Storage
    "40000013"  # transfer syntax sub-item, length 19
    "312E322E3834302E31303030382E312E322E31"  # 1.2.840.10008.1.2.1 (Explicit VR LE)
    "40000011"  # transfer syntax sub-item, length 17
    "312E322E3834302E31303030382E312E32"  # 1.2.840.10008.1.2 (Implicit VR LE)
    "50000033"  # user information item 0x50, reserved, length 51
    "51000004"  # maximum length sub-item 0x51, reserved, length 4
    "00004000"  # maximum length received 16384
    "5200001B"  # implementation class UID sub-item 0x52, length 27
    "312E322E3832362E302E312E333638303034332E31302E31333431"  # 1.2.826.0.1.3680043.10.1341
    "55000008"  # implementation version name sub-item 0x55, length 8
    "4F58494449434F4D"  # OXIDICOM
)

A_ASSOCIATE_AC = bytes.fromhex(
    "02"  # PDU type A-ASSOCIATE-AC
    "00"  # reserved
    "000000EC"  # PDU length 236
    "0001"  # protocol version
    "0000"  # reserved
    "4F525448414E43202020202020202020"  # called AE title (echoed, not tested)
    "53544F52455343552020202020202020"  # calling AE title (echoed)
    "0000000000000000000000000000000000000000000000000000000000000000"  # reserved (32 bytes)
    "10000015"  # application context item 0x10, length 21
    "312E322E3834302E31303030382E332E312E312E31"  # 1.2.840.10008.3.1.1.1
    "21000019"  # presentation context item 0x21, length 25
    "01000000"  # context ID 1, reserved, result 0 acceptance, reserved
    "40000011"  # transfer syntax sub-item 0x40, length 17
    "312E322E3834302E31303030382E312E32"  # 1.2.840.10008.1.2
    "21000008"  # presentation context item 0x21, length 8
    "03000400"  # context ID 3, reserved, result 4 transfer syntaxes not supported, reserved
    "40000000"  # transfer syntax sub-item 0x40, length 0 (not significant)
    "50000062"  # user information item 0x50, length 98
    "51000004"  # maximum length sub-item 0x51, length 4
    "00008000"  # maximum length received 32768
    "5200001B"  # implementation class UID sub-item 0x52, length 27
    "312E322E3832362E302E312E333638303034332E31302E31333431"  # 1.2.826.0.1.3680043.10.1341
    "53000004"  # asynchronous operations window sub-item 0x53, length 4
    "00010001"  # max invoked 1, max performed 1
    "5400001D"  # role selection sub-item 0x54, length 29
    "0019"  # UID length 25
    "312E322E3834302E31303030382E352E312E342E312E312E32"  # 1.2.840.10008.5.1.4.1.1.2
    "0100"  # SCU role 1, SCP role 0
    "55000008"  # implementation version name sub-item 0x55, length 8
    "4F58494449434F4D"  # OXIDICOM
    "59000002"  # user identity AC sub-item 0x59, length 2
    "0000"  # server response length 0
)

A_ASSOCIATE_RJ = bytes.fromhex(
    "03"  # PDU type A-ASSOCIATE-RJ
    "00"  # reserved
    "00000004"  # PDU length 4
    "00"  # reserved
    "01"  # result 1 rejected-permanent
    "01"  # source 1 service-user
    "07"  # reason 7 called-AE-title-not-recognized
)

P_DATA_TF = bytes.fromhex(
    "04"  # PDU type P-DATA-TF
    "00"  # reserved
    "00000054"  # PDU length 84
    "00000046"  # PDV item length 70
    "01"  # presentation context ID 1
    "03"  # message control header: command, last fragment
    # PDV data (68 bytes): the C-ECHO-RQ command set of tests/dimse/test_command.py
    "000000000400000038000000"
    "0000020012000000312E322E3834302E31303030382E312E3100"
    "00000001020000003000"
    "00001001020000000100"
    "00000008020000000101"
    "00000006"  # PDV item length 6
    "03"  # presentation context ID 3
    "00"  # message control header: data set, not last
    "08001800"  # PDV data: 4 bytes of a data set
)

A_RELEASE_RQ = bytes.fromhex(
    "05"  # PDU type A-RELEASE-RQ
    "00"  # reserved
    "00000004"  # PDU length 4
    "00000000"  # reserved
)

A_RELEASE_RP = bytes.fromhex(
    "06"  # PDU type A-RELEASE-RP
    "00"  # reserved
    "00000004"  # PDU length 4
    "00000000"  # reserved
)

A_ABORT = bytes.fromhex(
    "07"  # PDU type A-ABORT
    "00"  # reserved
    "00000004"  # PDU length 4
    "0000"  # reserved, reserved
    "02"  # source 2 service-provider
    "06"  # reason 6 invalid-PDU-parameter-value
)


APPLICATION_CONTEXT = bytes.fromhex(
    "10000015"  # item type 0x10 application context, reserved, length 21
    "312E322E3834302E31303030382E332E312E312E31"  # 1.2.840.10008.3.1.1.1
)

ABSTRACT_SYNTAX = bytes.fromhex(
    "30000019"  # item type 0x30 abstract syntax, reserved, length 25
    "312E322E3834302E31303030382E352E312E342E312E312E32"  # 1.2.840.10008.5.1.4.1.1.2
)

TRANSFER_SYNTAX = bytes.fromhex(
    "40000013"  # item type 0x40 transfer syntax, reserved, length 19
    "312E322E3834302E31303030382E312E322E31"  # 1.2.840.10008.1.2.1
)

PRESENTATION_CONTEXT_RQ = bytes.fromhex(
    "2000004D"  # item type 0x20 presentation context (RQ), reserved, length 77
    "05"  # presentation context ID 5
    "000000"  # reserved (3 bytes)
    "30000019"  # abstract syntax sub-item 0x30, length 25
    "312E322E3834302E31303030382E352E312E342E312E312E34"  # MR Image Storage
    "40000013"  # transfer syntax sub-item 0x40, length 19
    "312E322E3834302E31303030382E312E322E31"  # 1.2.840.10008.1.2.1
    "40000011"  # transfer syntax sub-item 0x40, length 17
    "312E322E3834302E31303030382E312E32"  # 1.2.840.10008.1.2
)

PRESENTATION_CONTEXT_AC = bytes.fromhex(
    "2100001B"  # item type 0x21 presentation context (AC), reserved, length 27
    "05"  # presentation context ID 5
    "00"  # reserved
    "00"  # result/reason 0: acceptance
    "00"  # reserved
    "40000013"  # transfer syntax sub-item 0x40, length 19
    "312E322E3834302E31303030382E312E322E31"  # 1.2.840.10008.1.2.1
)

MAXIMUM_LENGTH = bytes.fromhex(
    "50000008"  # item type 0x50 user information, reserved, length 8
    "51000004"  # sub-item type 0x51 maximum length, reserved, length 4
    "00000000"  # maximum length received 0: no limit
)

IMPLEMENTATION_CLASS_UID = bytes.fromhex(
    "5000001F"  # item type 0x50 user information, reserved, length 31
    "5200001B"  # sub-item type 0x52 implementation class UID, length 27
    "312E322E3832362E302E312E333638303034332E31302E31333431"  # 1.2.826.0.1.3680043.10.1341
)

IMPLEMENTATION_VERSION_NAME = bytes.fromhex(
    "50000012"  # item type 0x50 user information, reserved, length 18
    "5500000E"  # sub-item type 0x55 implementation version name, length 14
    "4F464649535F44434D544B5F3336"  # 'OFFIS_DCMTK_36'
)

ASYNC_OPERATIONS_WINDOW = bytes.fromhex(
    "50000008"  # item type 0x50 user information, reserved, length 8
    "53000004"  # sub-item type 0x53 asynchronous operations window, length 4
    "0005"  # maximum number operations invoked 5
    "0000"  # maximum number operations performed 0: unlimited
)

ROLE_SELECTION = bytes.fromhex(
    "50000021"  # item type 0x50 user information, reserved, length 33
    "5400001D"  # sub-item type 0x54 SCP/SCU role selection, length 29
    "0019"  # UID length 25
    "312E322E3834302E31303030382E352E312E342E312E312E34"  # 1.2.840.10008.5.1.4.1.1.4
    "00"  # SCU role 0: not proposed
    "01"  # SCP role 1: proposed
)

SOP_CLASS_EXTENDED = bytes.fromhex(
    "50000025"  # item type 0x50 user information, reserved, length 37
    "56000021"  # sub-item type 0x56 SOP class extended negotiation, length 33
    "0019"  # SOP class UID length 25
    "312E322E3834302E31303030382E352E312E342E312E312E32"  # 1.2.840.10008.5.1.4.1.1.2
    "010001000100"  # service-class-application-information (6 opaque bytes)
)

SOP_CLASS_COMMON_EXTENDED = bytes.fromhex(
    "5000006C"  # item type 0x50 user information, reserved, length 108
    "57000068"  # sub-item type 0x57 SOP class common extended negotiation, length 104
    "001B"  # SOP class UID length 27
    "312E322E3834302E31303030382E352E312E342E312E312E322E31"  # Enhanced CT Image Storage
    "0011"  # service class UID length 17
    "312E322E3834302E31303030382E342E32"  # 1.2.840.10008.4.2 (Storage service class)
    "0036"  # related general SOP class identification length 54
    "0019"  # related general SOP class UID length 25
    "312E322E3834302E31303030382E352E312E342E312E312E32"  # 1.2.840.10008.5.1.4.1.1.2
    "0019"  # related general SOP class UID length 25
    "312E322E3834302E31303030382E352E312E342E312E312E34"  # 1.2.840.10008.5.1.4.1.1.4
)

USER_IDENTITY_RQ_PASSCODE = bytes.fromhex(
    "50000015"  # item type 0x50 user information, reserved, length 21
    "58000011"  # sub-item type 0x58 user identity (RQ), length 17
    "02"  # user identity type 2: username and passcode
    "01"  # positive response requested
    "0005"  # primary field length 5
    "616C696365"  # 'alice'
    "0006"  # secondary field length 6
    "733363723374"  # 's3cr3t'
)

USER_IDENTITY_RQ_USERNAME = bytes.fromhex(
    "5000000D"  # item type 0x50 user information, reserved, length 13
    "58000009"  # sub-item type 0x58 user identity (RQ), length 9
    "01"  # user identity type 1: username
    "00"  # no positive response requested
    "0003"  # primary field length 3
    "626F62"  # 'bob'
    "0000"  # secondary field length 0
)

USER_IDENTITY_AC = bytes.fromhex(
    "5000000A"  # item type 0x50 user information, reserved, length 10
    "59000006"  # sub-item type 0x59 user identity (AC), length 6
    "0004"  # server response length 4
    "CAFEF00D"  # server response (e.g. a Kerberos ticket)
)

UNKNOWN_SUB_ITEM = bytes.fromhex(
    "5000000F"  # item type 0x50 user information, reserved, length 15
    "51000004"  # sub-item type 0x51 maximum length, length 4
    "00004000"  # 16384
    "7F000003"  # sub-item type 0x7F (undefined), length 3
    "010203"  # skipped, kept for reporting
)
