"""The peers work on this machine and the fixtures do what they promise.

Each test pairs two real implementations, so a failure here means a peer is
missing or broken, not that oxidicom is.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.filereader import read_preamble
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGLSLossless,
)

from tests.peers.dcmtk import (
    Storescp,
    StorescpFactory,
    echoscu,
    proposal_for,
    storescp,
    storescu,
)
from tests.peers.orthanc import Modality, Orthanc
from tests.peers.ports import PeerError
from tests.peers.pynetdicom_peer import (
    Context,
    RoleSelection,
    StorageScp,
    UserIdentity,
    identify,
    run_scu,
    storage_scp,
)

pytestmark = pytest.mark.interop

CT_UID = "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"


def sample(name: str) -> Path:
    path = get_testdata_file(name)
    assert path is not None, f"pydicom test file {name} is missing"
    return Path(path)


def data_set_bytes(path: Path) -> bytes:
    """A file's encoded data set: everything after the file meta information."""
    with path.open("rb") as f:
        read_preamble(f, force=False)
        meta_length = int.from_bytes(f.read(12)[8:12], "little")
        f.seek(meta_length, 1)
        return f.read()


# --- DCMTK ------------------------------------------------------------------------------


def test_storescu_delivers_a_file_to_storescp(dcmtk_storescp: Storescp) -> None:
    result = storescu(
        dcmtk_storescp.host,
        dcmtk_storescp.port,
        [sample("CT_small.dcm")],
        calling_aet="PUSHER",
        called_aet="DCMTK",
    )

    assert result.check().responses == ("Success",)
    [stored] = dcmtk_storescp.wait_for(1)
    assert (stored.calling_aet, stored.called_aet) == ("PUSHER", "DCMTK")
    assert dcmread(stored.path).SOPInstanceUID == CT_UID


def test_storescu_sends_a_directory(dcmtk_storescp: Storescp, tmp_path: Path) -> None:
    for name in ("CT_small.dcm", "MR_small.dcm"):
        (tmp_path / name).write_bytes(sample(name).read_bytes())

    result = storescu(dcmtk_storescp.host, dcmtk_storescp.port, [tmp_path])

    assert result.check().succeeded == 2
    assert len(dcmtk_storescp.wait_for(2)) == 2


def test_storescu_sends_compressed_files_unconverted_with_the_matching_proposal(
    storescp_factory: StorescpFactory,
) -> None:
    scp = storescp_factory(bit_preserving=True)
    file = sample("MR_small_jpeg_ls_lossless.dcm")

    result = storescu(scp.host, scp.port, [file], proposal=proposal_for(str(JPEGLSLossless)))

    assert result.check().responses == ("Success",)
    [stored] = scp.wait_for(1)
    assert dcmread(stored.path).file_meta.TransferSyntaxUID == JPEGLSLossless


def test_storescu_reports_a_refused_association(storescp_factory: StorescpFactory) -> None:
    scp = storescp_factory(extra_args=["--refuse"])

    result = storescu(scp.host, scp.port, [sample("CT_small.dcm")])

    assert not result.ok
    assert "Association Rejected" in result.stderr
    assert result.responses == ()


def test_echoscu_gets_success_from_storescp(dcmtk_storescp: Storescp) -> None:
    result = echoscu(dcmtk_storescp.host, dcmtk_storescp.port, calling_aet="PINGER")

    assert result.check().responses == ("Success",)


def test_storescp_that_cannot_start_raises_with_its_output(tmp_path: Path) -> None:
    with (
        pytest.raises(PeerError, match="storescp exited") as caught,
        storescp(tmp_path, extra_args=["--no-such-option"]),
    ):
        pass

    assert "no-such-option" in str(caught.value)


# --- pynetdicom SCU ---------------------------------------------------------------------


def test_pynetdicom_scu_sends_files_byte_for_byte(storescp_factory: StorescpFactory) -> None:
    scp = storescp_factory(bit_preserving=True)
    files = [sample("CT_small.dcm"), sample("JPEG2000.dcm"), sample("MR_small_RLE.dcm")]

    result = run_scu(scp.host, scp.port, items=files, echo=True, calling_aet="PYSCU")

    assert result.ending == "released"
    assert result.echo_status == 0
    assert result.statuses == (0, 0, 0)
    stored = scp.wait_for(3)
    assert {s.calling_aet for s in stored} == {"PYSCU"}
    by_uid = {dcmread(s.path, stop_before_pixels=True).SOPInstanceUID: s.path for s in stored}
    for file in files:
        _, instance, _ = identify(file)
        assert data_set_bytes(by_uid[instance]) == data_set_bytes(file), file.name


def test_storescp_aborts_on_an_odd_length_deflated_data_set(
    dcmtk_storescp: Storescp,
) -> None:
    """pydicom's image_dfl.dcm holds an odd-length deflate stream (PS3.5 A.5 wants it
    padded to even); sent as stored, DCMTK aborts with "Odd Fragment Length"."""
    file = sample("image_dfl.dcm")
    assert identify(file)[2] == DeflatedExplicitVRLittleEndian
    assert len(data_set_bytes(file)) % 2 == 1

    result = run_scu(dcmtk_storescp.host, dcmtk_storescp.port, items=[file])

    assert (result.ending, result.statuses) == ("peer-aborted", (None,))
    assert "Odd Fragment Length" in dcmtk_storescp.log()


def test_pynetdicom_scu_reports_contexts_the_scp_rejected(
    storescp_factory: StorescpFactory,
) -> None:
    scp = storescp_factory(accept="implicit")
    file = sample("CT_small.dcm")  # Explicit VR Little Endian

    result = run_scu(scp.host, scp.port, items=[file], echo=True)

    [echo, ct] = result.contexts
    assert echo.accepted
    assert echo.transfer_syntax == ImplicitVRLittleEndian
    assert (ct.accepted, ct.result) == (False, 4)  # transfer syntaxes not supported
    [outcome] = result.stores
    assert outcome.status is None
    assert outcome.error is not None
    assert scp.received() == []


def test_pynetdicom_scu_can_abort(storescp_factory: StorescpFactory) -> None:
    scp = storescp_factory()

    result = run_scu(scp.host, scp.port, items=[sample("CT_small.dcm")], end="abort")

    assert (result.ending, result.statuses) == ("aborted", (0,))


def test_pynetdicom_scu_against_nothing_fails_without_raising() -> None:
    with storage_scp() as scp:
        port = scp.port
    result = run_scu("127.0.0.1", port, echo=True, timeout=5)

    assert result.ending == "failed"
    assert not result.established


# --- pynetdicom SCP ---------------------------------------------------------------------


def test_storescu_delivers_to_pynetdicom_scp(pynetdicom_scp: StorageScp) -> None:
    file = sample("CT_small.dcm")

    result = storescu(
        pynetdicom_scp.host,
        pynetdicom_scp.port,
        [file],
        calling_aet="DCMTKSCU",
        called_aet="RECEIVER",
        proposal="implicit",
    )

    assert result.check().responses == ("Success",)
    [instance] = pynetdicom_scp.wait_for_instances(1)
    assert (instance.calling_aet, instance.called_aet) == ("DCMTKSCU", "RECEIVER")
    assert instance.transfer_syntax == ImplicitVRLittleEndian
    assert instance.dataset().SOPInstanceUID == CT_UID
    [association] = pynetdicom_scp.wait_for_associations(1)
    assert association.ending == "released"
    assert association.requested == (
        Context(str(dcmread(file).SOPClassUID), (str(ImplicitVRLittleEndian),)),
    )


def test_pynetdicom_scp_answers_with_the_configured_status() -> None:
    file = sample("CT_small.dcm")
    with storage_scp(store_status=0xA700) as scp:
        result = run_scu(scp.host, scp.port, items=[file])

    assert result.statuses == (0xA700,)
    assert [i.data for i in scp.received()] == [data_set_bytes(file)]


def test_pynetdicom_scu_sends_a_deflated_file_as_stored(pynetdicom_scp: StorageScp) -> None:
    # pydicom would re-deflate a decoded data set into different bytes.
    file = sample("image_dfl.dcm")

    result = run_scu(pynetdicom_scp.host, pynetdicom_scp.port, items=[file])

    assert result.statuses == (0,)
    [instance] = pynetdicom_scp.received()
    assert instance.transfer_syntax == DeflatedExplicitVRLittleEndian
    assert instance.data == data_set_bytes(file)
    assert instance.dataset().SOPInstanceUID == identify(file)[1]


def test_pynetdicom_scu_sends_roles_and_user_identity() -> None:
    file = sample("CT_small.dcm")
    sop_class = identify(file)[0]
    # Only Kerberos, SAML and JWT identities (kinds 3-5) get a server response.
    identity = UserIdentity(5, b"a.jwt.token", positive_response_requested=True)
    with storage_scp(identity_response=b"welcome") as scp:
        result = run_scu(
            scp.host,
            scp.port,
            items=[file],
            roles=[RoleSelection(sop_class, scu_role=True, scp_role=False)],
            user_identity=identity,
            max_pdu=32768,
        )
        [association] = scp.wait_for_associations(1)

    assert result.statuses == (0,)
    assert result.user_identity_response == b"welcome"
    assert association.roles == (RoleSelection(sop_class, scu_role=True, scp_role=False),)
    assert association.user_identity == identity
    assert association.max_pdu == 32768


# --- Orthanc ----------------------------------------------------------------------------


def test_orthanc_pushes_an_uploaded_file_to_storescp(
    orthanc_peer: Orthanc, dcmtk_storescp: Storescp
) -> None:
    instance = orthanc_peer.upload(sample("CT_small.dcm"))
    [study] = orthanc_peer.studies()
    orthanc_peer.put_modality(
        "dcmtk", Modality(dcmtk_storescp.aet, dcmtk_storescp.host, dcmtk_storescp.port)
    )

    response = orthanc_peer.store("dcmtk", [study])

    assert response.ok, response.body
    assert (response.body["InstancesCount"], response.body["FailedInstancesCount"]) == (1, 0)
    assert orthanc_peer.instances() == [instance]
    [stored] = dcmtk_storescp.wait_for(1)
    assert (stored.calling_aet, stored.called_aet) == (orthanc_peer.aet, dcmtk_storescp.aet)
    assert dcmread(stored.path).SOPInstanceUID == CT_UID


def test_orthanc_opens_a_new_association_for_each_new_transfer_syntax(
    orthanc_peer: Orthanc, pynetdicom_scp: StorageScp
) -> None:
    ct, j2k = sample("CT_small.dcm"), sample("JPEG2000.dcm")
    ids = [orthanc_peer.upload(ct), orthanc_peer.upload(j2k)]
    orthanc_peer.put_modality(
        "py", Modality(pynetdicom_scp.ae_title, pynetdicom_scp.host, pynetdicom_scp.port)
    )

    response = orthanc_peer.store("py", ids)

    assert response.ok, response.body
    first, second = pynetdicom_scp.wait_for_associations(2)
    ct_class, j2k_class = (identify(f)[0] for f in (ct, j2k))
    explicit = (str(ExplicitVRLittleEndian),)
    implicit_or_big = (str(ImplicitVRLittleEndian), str(ExplicitVRBigEndian))
    for sop_class in (ct_class, j2k_class):
        for association in (first, second):
            assert Context(sop_class, explicit) in association.requested
            assert Context(sop_class, implicit_or_big) in association.requested
    assert Context(j2k_class, (str(JPEG2000),)) not in first.requested
    assert Context(j2k_class, (str(JPEG2000),)) in second.requested
    syntaxes = {i.sop_instance_uid: i.transfer_syntax for i in pynetdicom_scp.received()}
    assert syntaxes == {identify(ct)[1]: ExplicitVRLittleEndian, identify(j2k)[1]: JPEG2000}
