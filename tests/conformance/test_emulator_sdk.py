"""The official Python SDK (azure-storage-file-share) against the afb emulator, and against a real
account when AFB_TEST_AZURE_CONNECTION_STRING is set: every operation the afb client uses, end to end.
"""

import os
from datetime import datetime, timedelta, timezone

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.storage.fileshare import (
    AccountSasPermissions,
    ContentSettings,
    FileSasPermissions,
    NTFSAttributes,
    ResourceTypes,
    ShareFileClient,
    ShareLeaseClient,
    ShareSasPermissions,
    ShareServiceClient,
    generate_account_sas,
    generate_file_sas,
    generate_share_sas,
)

from conftest import EmulatorProcess, Target, unique_name

MiB = 1024 * 1024
SDDL = "O:BAG:BAD:(A;;FA;;;BA)(A;;0x1200a9;;;BU)"


def account_parts(target):
    parts = dict(p.split("=", 1) for p in target.connection_string.split(";") if "=" in p)
    return parts["AccountName"], parts["AccountKey"]


def account_url(service):
    return service.url.rstrip("/")


# ---- shares ----


def test_share_lifecycle(service):
    name = unique_name()
    share = service.create_share(name, metadata={"team": "backup"}, quota=7)
    try:
        with pytest.raises(ResourceExistsError) as e:
            service.create_share(name)
        assert e.value.error_code == "ShareAlreadyExists"
        props = share.get_share_properties()
        assert props.name == name and props.quota == 7 and props.metadata == {"team": "backup"}
        assert props.etag.startswith('"0x') and props.last_modified
        listed = [s for s in service.list_shares(name_starts_with=name, include_metadata=True)]
        assert [s.name for s in listed] == [name] and listed[0].metadata == {"team": "backup"} and listed[0].quota == 7
        share.set_share_metadata({"a": "1", "b": "2"})
        share.set_share_quota(9)
        props2 = share.get_share_properties()
        assert props2.metadata == {"a": "1", "b": "2"} and props2.quota == 9 and props2.etag != props.etag
    finally:
        share.delete_share()
    with pytest.raises(ResourceNotFoundError) as e:
        share.get_share_properties()
    assert e.value.error_code == "ShareNotFound"


def test_list_shares_pages_in_name_order(service):
    prefix = unique_name("afbp")
    names = [f"{prefix}-{i}" for i in (3, 0, 4, 1, 2)]
    for n in names:
        service.create_share(n)
    try:
        pages = service.list_shares(name_starts_with=prefix, results_per_page=2).by_page()
        seen = [[s.name for s in page] for page in pages]
        assert [len(p) for p in seen] == [2, 2, 1]
        assert sum(seen, []) == sorted(names)
    finally:
        for n in names:
            service.delete_share(n)


def test_missing_share_is_share_not_found(service):
    share = service.get_share_client(unique_name())
    with pytest.raises(ResourceNotFoundError) as e:
        share.get_share_properties()
    assert e.value.error_code == "ShareNotFound"
    with pytest.raises(ResourceNotFoundError) as e:
        share.get_file_client("x.txt").upload_file(b"x")
    assert e.value.error_code == "ShareNotFound"


def test_invalid_names_are_rejected(service, share):
    for bad in ["Upper", "a_b", "ab", "a--b"]:
        with pytest.raises(HttpResponseError) as e:
            service.create_share(bad)
        assert e.value.status_code == 400 and e.value.error_code == "InvalidResourceName", bad
    for bad in ["a|b", "a<b", 'q"', "x" * 256]:
        with pytest.raises(HttpResponseError) as e:
            share.get_directory_client(bad).create_directory()
        assert e.value.status_code == 400 and e.value.error_code == "InvalidResourceName", bad


# ---- directories and files ----


def test_directories(share):
    d = share.get_directory_client("top")
    d.create_directory(metadata={"k": "v"})
    with pytest.raises(ResourceExistsError) as e:
        d.create_directory()
    assert e.value.error_code == "ResourceAlreadyExists"
    with pytest.raises(ResourceExistsError) as e:
        share.get_directory_client("TOP").create_directory()
    assert e.value.error_code == "ResourceAlreadyExists"
    with pytest.raises(ResourceNotFoundError) as e:
        share.get_directory_client("missing/child").create_directory()
    assert e.value.error_code == "ParentNotFound"
    sub = d.create_subdirectory("sub")
    props = d.get_directory_properties()
    assert props.metadata == {"k": "v"} and props.is_directory
    assert "Directory" in str(props.file_attributes)
    assert props.file_id and props.parent_id and props.permission_key
    assert int(sub.get_directory_properties().parent_id) == int(props.file_id)
    created = datetime(2020, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)
    d.set_http_headers(file_attributes="Hidden|Directory", file_creation_time=created, file_last_write_time=created)
    p2 = d.get_directory_properties()
    assert "Hidden" in str(p2.file_attributes)
    assert p2.creation_time.replace(tzinfo=timezone.utc) == created and p2.last_write_time.replace(tzinfo=timezone.utc) == created
    d.set_directory_metadata({"x": "y"})
    assert d.get_directory_properties().metadata == {"x": "y"}
    with pytest.raises(HttpResponseError) as e:
        d.delete_directory()
    assert e.value.status_code == 409 and e.value.error_code == "DirectoryNotEmpty"
    sub.delete_directory()
    d.delete_directory()
    with pytest.raises(ResourceNotFoundError):
        d.get_directory_properties()


def test_file_properties_smb_and_metadata(target, share):
    f = share.get_file_client("props.bin")
    created = datetime(2021, 5, 6, 7, 8, 9, 654321, tzinfo=timezone.utc)
    f.create_file(
        1000,
        content_settings=ContentSettings(content_type="text/plain", content_language="en", cache_control="no-cache"),
        metadata={"owner": "afb"},
        file_attributes=NTFSAttributes(read_only=True, archive=True),
        file_creation_time=created,
        file_last_write_time=created,
        file_change_time=created,
    )
    p = f.get_file_properties()
    assert p.size == 1000 and p.metadata == {"owner": "afb"} and p.file_type == "File"
    assert p.content_settings.content_type == "text/plain" and p.content_settings.content_language == "en"
    assert p.content_settings.cache_control == "no-cache"
    attrs = str(p.file_attributes)
    assert "ReadOnly" in attrs and "Archive" in attrs
    for t in (p.creation_time, p.last_write_time, p.change_time):
        assert t.replace(tzinfo=timezone.utc) == created
    assert p.server_encrypted is True and p.file_id and p.parent_id and p.permission_key
    f.set_file_metadata({"new": "1"})
    assert f.get_file_properties().metadata == {"new": "1"}
    f.set_http_headers(content_settings=ContentSettings(content_type="application/json"), file_attributes="Archive")
    p2 = f.get_file_properties()
    assert p2.content_settings.content_type == "application/json"
    assert p2.content_settings.content_language is None  # Set File Properties clears what it is not given
    assert str(p2.file_attributes) == "Archive"
    assert p2.creation_time == p.creation_time  # SMB times are preserved unless given
    assert p2.file_id == p.file_id
    f.delete_file()
    with pytest.raises(ResourceNotFoundError) as e:
        f.get_file_properties()
    assert e.value.error_code == "ResourceNotFound"


def test_nfs_properties_are_stored(target, share):
    if not target.is_emulator:
        pytest.skip("NFS properties need an NFS share; the real-account run uses SMB shares")
    f = share.get_file_client("nfs.bin")
    f.create_file(10, file_mode="0644", owner="1000", group="1001")
    p = f.get_file_properties()
    assert (p.file_mode, p.owner, p.group) == ("0644", "1000", "1001")
    d = share.get_directory_client("nfsdir")
    d.create_directory(file_mode="0755", owner="0", group="0")
    dp = d.get_directory_properties()
    assert (dp.file_mode, dp.owner, dp.group) == ("0755", "0", "0")


def test_names_are_case_insensitive_and_case_preserving(share):
    share.get_file_client("Readme.TXT").upload_file(b"one")
    first = share.get_file_client("Readme.TXT").get_file_properties()
    with pytest.raises(ResourceExistsError):
        share.get_directory_client("README.txt").create_directory()
    assert share.get_file_client("readme.txt").download_file().readall() == b"one"
    names = [e["name"] for e in share.get_directory_client("").list_directories_and_files()]
    assert names == ["Readme.TXT"]
    assert share.get_file_client("README.TXT").get_file_properties().file_id == first.file_id


def test_permissions(target, share):
    key = share.create_permission_for_share(SDDL)
    assert key and share.create_permission_for_share(SDDL) == key
    got = share.get_permission_for_share(key)
    if target.is_emulator:
        assert got == SDDL
    else:
        assert got.startswith("O:")
    f = share.get_file_client("perm.txt")
    f.create_file(0, permission_key=key)
    assert f.get_file_properties().permission_key == key
    d = share.get_directory_client("permdir")
    d.create_directory(file_permission=SDDL)
    assert d.get_directory_properties().permission_key == key
    with pytest.raises(HttpResponseError) as e:
        share.get_file_client("bad.txt").create_file(0, permission_key="123*456")
    assert e.value.status_code in (400, 404)


# ---- content ----


def test_upload_download_and_ranges(share):
    data = os.urandom(5 * MiB + 123)
    f = share.get_file_client("big.bin")
    f.upload_file(data)
    assert f.download_file().readall() == data
    assert f.download_file(offset=MiB, length=1000).readall() == data[MiB : MiB + 1000]
    assert f.download_file(offset=len(data) - 10, length=100).readall() == data[-10:]
    ranges = f.get_ranges()
    assert ranges == [{"start": 0, "end": len(data) - 1}]
    f.clear_range(offset=MiB, length=MiB)
    got = f.download_file().readall()
    assert got[MiB : 2 * MiB] == bytes(MiB) and got[: MiB] == data[:MiB] and got[2 * MiB :] == data[2 * MiB :]
    ranges = f.get_ranges()
    assert ranges == [{"start": 0, "end": MiB - 1}, {"start": 2 * MiB, "end": len(data) - 1}]
    f.upload_range(b"x" * 512, offset=MiB, length=512)
    assert f.download_file(offset=MiB, length=512).readall() == b"x" * 512
    ranges = f.get_ranges(offset=MiB, length=2 * MiB)
    assert ranges[0] == {"start": MiB, "end": MiB + 511}
    with pytest.raises(HttpResponseError) as e:
        f.upload_range(b"y" * 512, offset=len(data), length=512)
    assert e.value.status_code == 416 and e.value.error_code == "InvalidRange"
    f.resize_file(MiB + 100)
    assert f.get_file_properties().size == MiB + 100
    f.resize_file(3 * MiB)
    got = f.download_file().readall()
    assert len(got) == 3 * MiB and got[: MiB] == data[:MiB] and got[MiB + 100 :] == bytes(3 * MiB - MiB - 100)
    empty = share.get_file_client("empty.bin")
    empty.create_file(0)
    assert empty.download_file().readall() == b""
    sparse = share.get_file_client("sparse.bin")
    sparse.create_file(2048)
    assert sparse.download_file().readall() == bytes(2048)
    assert sparse.get_ranges() == []


def test_range_past_end_is_invalid_range(share):
    f = share.get_file_client("short.bin")
    f.upload_file(b"abc")
    with pytest.raises(HttpResponseError) as e:
        f.download_file(offset=10, length=5).readall()
    assert e.value.status_code == 416


# ---- snapshots ----


def test_snapshots_are_isolated(service, share):
    d = share.get_directory_client("docs")
    d.create_directory()
    f = d.get_file_client("a.txt")
    f.upload_file(b"version one")
    gone = d.get_file_client("gone.txt")
    gone.upload_file(b"will be deleted")
    snap = share.create_snapshot(metadata={"why": "test"})
    snapshot_id = snap["snapshot"]
    assert snapshot_id.endswith("Z") and len(snapshot_id.split(".")[1]) == 8  # 7 digits + Z
    f.upload_file(b"version two, longer")
    gone.delete_file()
    d.get_file_client("new.txt").upload_file(b"new")

    frozen = service.get_share_client(share.share_name, snapshot=snapshot_id)
    fd = frozen.get_directory_client("docs")
    assert fd.get_file_client("a.txt").download_file().readall() == b"version one"
    assert sorted(e["name"] for e in fd.list_directories_and_files()) == ["a.txt", "gone.txt"]
    assert sorted(e["name"] for e in d.list_directories_and_files()) == ["a.txt", "new.txt"]
    assert fd.get_file_client("a.txt").get_file_properties().file_id == f.get_file_properties().file_id
    assert frozen.get_share_properties().snapshot == snapshot_id

    listed = [s for s in service.list_shares(name_starts_with=share.share_name, include_snapshots=True)]
    assert [(s.name, s.snapshot) for s in listed] == [(share.share_name, None), (share.share_name, snapshot_id)]
    # A snapshot's own metadata (given when it was taken) is listed with it, not the share's.
    listed = [s for s in service.list_shares(name_starts_with=share.share_name, include_snapshots=True, include_metadata=True)]
    assert [(s.snapshot, dict(s.metadata or {})) for s in listed] == [(None, {}), (snapshot_id, {"why": "test"})]

    with pytest.raises(HttpResponseError) as e:
        share.delete_share()
    assert e.value.status_code == 409 and e.value.error_code == "ShareHasSnapshots"
    with pytest.raises(HttpResponseError):
        fd.get_file_client("a.txt").upload_range(b"z" * 4, offset=0, length=4)
    frozen.delete_share()
    assert [s.snapshot for s in service.list_shares(name_starts_with=share.share_name, include_snapshots=True)] == [None]


def test_list_ranges_diff_against_previous_snapshot(target, service, share):
    f = share.get_file_client("disk.img")
    f.create_file(4 * MiB)
    f.upload_range(b"a" * MiB, offset=0, length=MiB)
    f.upload_range(b"b" * MiB, offset=2 * MiB, length=MiB)
    snap1 = share.create_snapshot()["snapshot"]
    f.upload_range(b"c" * 512, offset=4096, length=512)
    f.clear_range(offset=2 * MiB, length=MiB)
    f.upload_range(b"d" * 1024, offset=3 * MiB + 1024, length=1024)
    changed, cleared = f.get_ranges_diff(previous_sharesnapshot=snap1)
    if target.is_emulator:
        assert changed == [{"start": 4096, "end": 4607}, {"start": 3 * MiB + 1024, "end": 3 * MiB + 2047}]
        assert cleared == [{"start": 2 * MiB, "end": 3 * MiB - 1}]
    else:
        assert any(r["start"] <= 4096 and r["end"] >= 4607 for r in changed)
        assert any(r["start"] <= 2 * MiB and r["end"] >= 3 * MiB - 1 for r in cleared)
    snap2 = share.create_snapshot()["snapshot"]
    f.upload_range(b"e" * 512, offset=0, length=512)
    at2 = service.get_share_client(share.share_name, snapshot=snap2).get_file_client("disk.img")
    changed2, cleared2 = at2.get_ranges_diff(previous_sharesnapshot=snap1)
    assert (changed2, cleared2) == (changed, cleared)
    assert f.get_ranges_diff(previous_sharesnapshot=snap2) == ([{"start": 0, "end": 511}], []) or not target.is_emulator


# ---- rename ----


def test_rename_keeps_file_id(share):
    src_dir = share.get_directory_client("src")
    src_dir.create_directory()
    share.get_directory_client("dst").create_directory()
    f = src_dir.get_file_client("a.txt")
    f.upload_file(b"content")
    fid = f.get_file_properties().file_id
    moved = f.rename_file("dst/b.txt")
    assert moved.get_file_properties().file_id == fid
    assert moved.download_file().readall() == b"content"
    with pytest.raises(ResourceNotFoundError):
        f.get_file_properties()
    other = share.get_file_client("dst/c.txt")
    other.upload_file(b"other")
    with pytest.raises(ResourceExistsError):
        moved.rename_file("dst/c.txt")
    replaced = moved.rename_file("dst/c.txt", overwrite=True)
    assert replaced.download_file().readall() == b"content" and replaced.get_file_properties().file_id == fid

    dir_id = src_dir.get_directory_properties().file_id
    src_dir.get_file_client("inner.txt").upload_file(b"inner")
    inner_id = src_dir.get_file_client("inner.txt").get_file_properties().file_id
    renamed = src_dir.rename_directory("dst/moved")
    assert renamed.get_directory_properties().file_id == dir_id
    assert renamed.get_file_client("inner.txt").get_file_properties().file_id == inner_id
    with pytest.raises(ResourceNotFoundError):
        src_dir.get_directory_properties()


# ---- listing ----


def test_listing_pages_and_include(share):
    root = share.get_directory_client("")
    names = [f"f{i:02d}.txt" for i in range(0, 20)] + ["B-dir", "a-dir", "Z.txt", "c-dir"]
    for n in names:
        if n.endswith("-dir"):
            share.get_directory_client(n).create_directory()
        else:
            share.get_file_client(n).upload_file(n.encode())
    pages = [list(p) for p in root.list_directories_and_files(results_per_page=7).by_page()]
    assert [len(p) for p in pages] == [7, 7, 7, 3]
    flat = [e["name"] for e in sum(pages, [])]
    assert flat == sorted(names, key=str.upper)
    entries = list(
        root.list_directories_and_files(
            include=["timestamps", "ETag", "Attributes", "PermissionKey"], include_extended_info=True
        )
    )
    for e in entries:
        assert e.file_id and e.etag and e.last_modified and e.creation_time and e.last_write_time and e.change_time
        assert e.permission_key and e.file_attributes
        if e.is_directory:
            assert e.file_attributes == "Directory"
        else:
            assert e.size == len(e.name)
    assert [e["name"] for e in root.list_directories_and_files(name_starts_with="f1")] == [f"f1{i}.txt" for i in range(10)]


def test_names_that_xml_cannot_carry_are_encoded(share):
    name = "odd\ufffe\uffffname.txt"
    share.get_file_client(name).upload_file(b"x")
    assert [e["name"] for e in share.get_directory_client("").list_directories_and_files()] == [name]


# ---- authorization ----


def test_wrong_key_is_authentication_failed(target):
    account, _ = account_parts(target)
    wrong = ShareServiceClient.from_connection_string(
        target.connection_string.replace(account_parts(target)[1], "d3Jvbmcga2V5IHdyb25nIGtleSB3cm9uZyBrZXk=")
    )
    with pytest.raises(ClientAuthenticationError) as e:
        list(wrong.list_shares())
    assert e.value.status_code == 403 and e.value.error_code == "AuthenticationFailed"


def test_sas(target, service, share):
    account, key = account_parts(target)
    f = share.get_file_client("sas.txt")
    f.upload_file(b"sas data")
    share.get_file_client("other.txt").upload_file(b"other")
    url = account_url(service)
    expiry = datetime.now(timezone.utc) + timedelta(hours=1)

    read_list = generate_share_sas(account, share.share_name, key, permission=ShareSasPermissions(read=True, list=True), expiry=expiry)
    ro = ShareServiceClient(url, credential=read_list).get_share_client(share.share_name)
    assert [e["name"] for e in ro.get_directory_client("").list_directories_and_files()] == ["other.txt", "sas.txt"]
    assert ro.get_file_client("sas.txt").download_file().readall() == b"sas data"
    with pytest.raises(HttpResponseError) as e:
        ro.get_file_client("new.txt").upload_file(b"no")
    assert e.value.status_code == 403 and e.value.error_code == "AuthorizationPermissionMismatch"

    file_sas = generate_file_sas(account, share.share_name, ["sas.txt"], key, permission=FileSasPermissions(read=True), expiry=expiry)
    fc = ShareFileClient(url, share.share_name, "sas.txt", credential=file_sas)
    assert fc.download_file().readall() == b"sas data"
    other = ShareFileClient(url, share.share_name, "other.txt", credential=file_sas)
    with pytest.raises(ClientAuthenticationError) as e:
        other.download_file().readall()
    assert e.value.error_code == "AuthenticationFailed"

    account_sas = generate_account_sas(
        account,
        key,
        resource_types=ResourceTypes(service=True, container=True, object=True),
        permission=AccountSasPermissions(read=True, write=True, list=True, create=True),
        expiry=expiry,
    )
    acc = ShareServiceClient(url, credential=account_sas)
    assert share.share_name in [s.name for s in acc.list_shares(name_starts_with=share.share_name)]
    acc.get_share_client(share.share_name).get_file_client("by-account-sas.txt").upload_file(b"ok")
    assert f.download_file().readall() == b"sas data"

    expired = generate_share_sas(
        account, share.share_name, key, permission=ShareSasPermissions(read=True, list=True),
        start=datetime.now(timezone.utc) - timedelta(hours=2), expiry=datetime.now(timezone.utc) - timedelta(hours=1),
    )
    old = ShareServiceClient(url, credential=expired).get_share_client(share.share_name)
    with pytest.raises(ClientAuthenticationError) as e:
        old.get_share_properties()
    assert e.value.status_code == 403 and e.value.error_code == "AuthenticationFailed"


# ---- persistence ----


def test_restart_keeps_everything(tmp_path):
    emu = EmulatorProcess(str(tmp_path / "data"))
    try:
        svc = ShareServiceClient.from_connection_string(emu.connection_string)
        share = svc.create_share("persist", metadata={"m": "1"})
        share.get_directory_client("d").create_directory()
        f = share.get_directory_client("d").create_subdirectory("e").get_file_client("f.bin")
        share.get_directory_client("d").get_file_client("top.txt").upload_file(b"top")
        f.upload_file(b"0123456789")
        fid = f.get_file_properties().file_id
        snap = share.create_snapshot()["snapshot"]
        f.upload_range(b"ab", offset=0, length=2)
        key = share.create_permission_for_share(SDDL)
    finally:
        emu.stop()
    emu = EmulatorProcess(str(tmp_path / "data"))
    try:
        svc = ShareServiceClient.from_connection_string(emu.connection_string)
        share = svc.get_share_client("persist")
        assert share.get_share_properties().metadata == {"m": "1"}
        f = share.get_file_client("d/e/f.bin")
        assert f.download_file().readall() == b"ab23456789"
        assert f.get_file_properties().file_id == fid
        frozen = svc.get_share_client("persist", snapshot=snap).get_file_client("d/e/f.bin")
        assert frozen.download_file().readall() == b"0123456789"
        assert share.get_permission_for_share(key) == SDDL
        new = share.get_file_client("d/new.txt")
        new.upload_file(b"n")
        assert int(new.get_file_properties().file_id) > int(fid)  # ids are never reused
    finally:
        emu.stop()


# ---- virtual shares (emulator only) ----


def _walk_files(share, path=""):
    """Every file below `path` as (path, properties item), depth first, in listing order."""
    out = []
    directory = share.get_directory_client(path)
    for item in directory.list_directories_and_files(include=["timestamps", "Etag", "Attributes", "PermissionKey"],
                                                     include_extended_info=True):
        child = f"{path}/{item.name}" if path else item.name
        if item.is_directory:
            out.extend(_walk_files(share, child))
        else:
            out.append((child, item))
    return out


def test_virtual_share_lists_and_downloads(tmp_path):
    spec = "virt=2500,seed=11,change=0.02"
    emu = EmulatorProcess(str(tmp_path / "a"), extra_args=["--virtual-share", spec])
    twin = EmulatorProcess(str(tmp_path / "b"), extra_args=["--virtual-share", spec])
    try:
        svc = ShareServiceClient.from_connection_string(emu.connection_string)
        names = [s.name for s in svc.list_shares()]
        assert "virt" in names
        share = svc.get_share_client("virt")
        files = _walk_files(share)
        assert len(files) == 2500
        assert len({item.file_id for _, item in files}) == 2500
        assert files[0][0] == "d0000/f000000.dat"
        sized = [(p, item) for p, item in files if item.size > 0][:5]
        twin_share = ShareServiceClient.from_connection_string(twin.connection_string).get_share_client("virt")
        for path, item in sized:
            data = share.get_file_client(path).download_file().readall()
            assert len(data) == item.size
            assert share.get_file_client(path).download_file().readall() == data
            assert twin_share.get_file_client(path).download_file().readall() == data
            part = share.get_file_client(path).download_file(offset=3, length=17).readall()
            assert part == data[3:20]
        props = share.get_file_client(sized[0][0]).get_file_properties()
        assert props.file_id == sized[0][1].file_id and props.size == sized[0][1].size

        # Copy File from the virtual share into a stored one.
        copies = svc.create_share("copies")
        copied = copies.get_file_client("c.dat")
        assert copied.start_copy_from_url(share.get_file_client(sized[0][0]).url)["copy_status"] == "success"
        assert copied.download_file().readall() == share.get_file_client(sized[0][0]).download_file().readall()

        # Read-only apart from snapshots.
        with pytest.raises(HttpResponseError) as e:
            share.get_file_client("d0000/new.txt").upload_file(b"x")
        assert e.value.status_code == 409 and e.value.error_code == "VirtualShareIsReadOnly"

        # A snapshot freezes generation 0; the live share moves on to generation 1.
        snap = share.create_snapshot()["snapshot"]
        frozen = svc.get_share_client("virt", snapshot=snap)
        assert [(p, i.file_id, i.size) for p, i in _walk_files(frozen)] == [(p, i.file_id, i.size) for p, i in files]
        live = _walk_files(share)
        before = {i.file_id: (p, i.size, i.last_modified) for p, i in files}
        after = {i.file_id: (p, i.size, i.last_modified) for p, i in live}
        assert set(before) - set(after), "some files were deleted"
        assert set(after) - set(before), "some files were added"
        changed = [fid for fid in before if fid in after and before[fid][2] != after[fid][2]]
        assert changed, "some files were modified"
        moved = [fid for fid in before if fid in after and before[fid][0] != after[fid][0]]
        assert moved, "a directory was renamed"
        path = after[changed[0]][0]
        ranges, _ = share.get_file_client(path).get_ranges_diff(previous_sharesnapshot=snap)
        size = after[changed[0]][1]
        assert ranges == ([{"start": 0, "end": size - 1}] if size else [])
        same = next(fid for fid in before if fid in after and before[fid] == after[fid])
        ranges, _ = share.get_file_client(after[same][0]).get_ranges_diff(previous_sharesnapshot=snap)
        assert ranges == []
    finally:
        emu.stop()
        twin.stop()


# ---- addressing (emulator only) ----


def test_account_less_paths_work_for_every_operation_including_rename(target):
    """An endpoint without the account segment (`http://127.0.0.1:PORT`): requests are `/share/path`
    (what the JavaScript SDK sends for ShareFileClient.rename), signed for the emulator's account."""
    if not target.is_emulator:
        pytest.skip("emulator addressing")
    name, key = account_parts(target)
    base = target.service().url.rstrip("/")
    host = base[: base.rindex("/" + name)]
    svc = ShareServiceClient(account_url=host, credential={"account_name": name, "account_key": key})
    share = svc.create_share(unique_name())
    try:
        f = share.get_file_client("a.txt")
        f.upload_file(b"account-less")
        fid = f.get_file_properties().file_id
        renamed = f.rename_file("b.txt")
        assert renamed.url.startswith(host + "/" + share.share_name + "/")
        assert renamed.download_file().readall() == b"account-less"
        assert renamed.get_file_properties().file_id == fid
        names = [i.name for i in share.list_directories_and_files()]
        assert names == ["b.txt"]
        # The same share through the usual path-style endpoint.
        assert target.service().get_share_client(share.share_name).get_file_client("b.txt").download_file().readall() == b"account-less"
    finally:
        share.delete_share()


# ---- service versions ----


def test_old_versions_work_and_are_answered_in_their_own_version(target):
    svc = ShareServiceClient.from_connection_string(target.connection_string, api_version="2019-02-02")
    share = svc.create_share(unique_name())
    try:
        f = share.get_file_client("v.txt")
        f.upload_file(b"versioned")
        assert f.download_file().readall() == b"versioned"
        got = []
        props = f.get_file_properties(raw_response_hook=lambda r: got.append(r.http_response.headers["x-ms-version"]))
        assert props.size == 9 and got == ["2019-02-02"]
    finally:
        share.delete_share()


def signed_request(target, method, url, headers=None, body=None):
    """Sends `method url` with `headers`, signed with Shared Key by the SDK's own signing policy (so any
    x-ms-version can be sent); returns (status, headers, body)."""
    import urllib.error
    import urllib.request

    from azure.core.pipeline import PipelineContext, PipelineRequest
    from azure.core.rest import HttpRequest
    from azure.storage.fileshare._shared.authentication import SharedKeyCredentialPolicy

    name, key = account_parts(target)
    all_headers = {"x-ms-date": datetime.now(timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")}
    all_headers.update(headers or {})
    if body is not None:
        all_headers["Content-Length"] = str(len(body))
        all_headers["Content-Type"] = "application/octet-stream"  # else urllib adds an unsigned one
    req = HttpRequest(method, url, headers=all_headers)
    SharedKeyCredentialPolicy(name, key).on_request(PipelineRequest(req, PipelineContext(None)))
    raw = urllib.request.Request(url, data=body, method=method, headers=dict(req.headers))
    try:
        with urllib.request.urlopen(raw) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def test_unknown_versions_are_invalid_header_value(target, service):
    url = account_url(service) + "/?comp=list"
    for bad in ["2099-01-01", "not-a-version", "2019-02-03"]:
        status, headers, body = signed_request(target, "GET", url, {"x-ms-version": bad})
        assert (status, headers["x-ms-error-code"]) == (400, "InvalidHeaderValue"), bad
        assert b"<HeaderName>x-ms-version</HeaderName>" in body
    for version in ["2019-02-02", "2021-12-02", "2025-11-05"]:
        status, headers, _ = signed_request(target, "GET", url, {"x-ms-version": version})
        assert (status, headers["x-ms-version"]) == (200, version)


# ---- leases ----


def test_file_leases(target, share):
    import uuid

    f = share.get_file_client("leased.txt")
    f.upload_file(b"abc")
    lease = f.acquire_lease()
    props = f.get_file_properties()
    assert (props.lease.state, props.lease.status, props.lease.duration) == ("leased", "locked", "infinite")
    # Changes need the lease.
    with pytest.raises(HttpResponseError) as e:
        f.upload_range(b"x", offset=0, length=1)
    assert e.value.status_code == 412 and e.value.error_code == "LeaseIdMissing"
    with pytest.raises(HttpResponseError) as e:
        f.set_file_metadata({"a": "b"}, lease=str(uuid.uuid4()))
    assert e.value.status_code == 412 and e.value.error_code.startswith("LeaseIdMismatch")
    with pytest.raises(HttpResponseError) as e:
        f.delete_file()
    assert e.value.status_code == 412 and e.value.error_code == "LeaseIdMissing"
    f.upload_range(b"x", offset=0, length=1, lease=lease)
    # Another acquirer is refused; the holder may change the id.
    with pytest.raises(HttpResponseError) as e:
        f.acquire_lease(lease_id=str(uuid.uuid4()))
    assert e.value.status_code == 409 and e.value.error_code == "LeaseAlreadyPresent"
    old_id, new_id = lease.id, str(uuid.uuid4())
    lease.change(new_id)
    assert lease.id == new_id
    with pytest.raises(HttpResponseError) as e:
        f.upload_range(b"y", offset=1, length=1, lease=old_id)
    assert e.value.status_code == 412
    f.upload_range(b"y", offset=1, length=1, lease=lease)
    # Release frees the file; a lease operation on a file without a lease is refused.
    lease.release()
    assert f.get_file_properties().lease.state == "available"
    f.upload_range(b"z", offset=2, length=1)
    with pytest.raises(HttpResponseError) as e:
        ShareLeaseClient(f, lease_id=new_id).release()
    assert e.value.status_code == 409 and e.value.error_code == "LeaseNotPresentWithLeaseOperation"
    # Break ends an active lease at once (file leases are infinite; there is no break period).
    lease = f.acquire_lease()
    assert lease.break_lease() == 0
    assert f.get_file_properties().lease.state == "broken"
    f.upload_range(b"w", offset=0, length=1)
    assert f.download_file().readall() == b"wyz"
    f.acquire_lease().release()
    f.delete_file()


# ---- handles, conditional reads, Content-MD5 ----


def test_handles_lists_are_empty_and_force_close_closes_none(share):
    d = share.get_directory_client("hd")
    d.create_directory()
    f = d.get_file_client("h.txt")
    f.upload_file(b"h")
    assert list(f.list_handles()) == []
    assert list(d.list_handles(recursive=True)) == []
    assert f.close_all_handles() == {"closed_handles_count": 0, "failed_handles_count": 0}
    assert d.close_all_handles(recursive=True) == {"closed_handles_count": 0, "failed_handles_count": 0}
    with pytest.raises(ResourceNotFoundError):
        list(share.get_file_client("hd/missing.txt").list_handles())


def test_conditional_reads_and_content_md5(target, share):
    import base64
    import hashlib

    f = share.get_file_client("cond.bin")
    f.upload_file(b"0123456789")
    etag = f.get_file_properties().etag
    url = f.url
    version = {"x-ms-version": "2025-11-05"}
    assert signed_request(target, "GET", url, {**version, "If-Match": etag})[0] == 200
    status, headers, _ = signed_request(target, "GET", url, {**version, "If-Match": '"0x1"'})
    assert (status, headers["x-ms-error-code"]) == (412, "ConditionNotMet")
    assert signed_request(target, "HEAD", url, {**version, "If-None-Match": etag})[0] == 304
    assert signed_request(target, "GET", url, {**version, "If-None-Match": '"0x1"'})[0] == 200
    # Content-MD5 on Put Range is checked.
    f.upload_range(b"abc", offset=0, length=3, validate_content=True)
    good = base64.b64encode(hashlib.md5(b"xyz").digest()).decode()
    bad = base64.b64encode(hashlib.md5(b"not xyz").digest()).decode()
    put = {**version, "x-ms-range": "bytes=3-5", "x-ms-write": "update"}
    status, headers, _ = signed_request(target, "PUT", url + "?comp=range", {**put, "Content-MD5": bad}, b"xyz")
    assert (status, headers["x-ms-error-code"]) == (400, "Md5Mismatch")
    assert signed_request(target, "PUT", url + "?comp=range", {**put, "Content-MD5": good}, b"xyz")[0] == 201
    assert f.download_file().readall() == b"abcxyz6789"


# ---- Copy File ----


def test_copy_file_within_the_account(service, share):
    data = bytes(range(256)) * 40
    src = share.get_file_client("src.bin")
    src.upload_file(data, metadata={"k": "v"}, content_settings=ContentSettings(content_type="text/plain"))
    dst = share.get_file_client("copy.bin")
    result = dst.start_copy_from_url(src.url)
    assert result["copy_status"] == "success" and result["copy_id"]
    assert dst.download_file().readall() == data
    props = dst.get_file_properties()
    assert props.metadata == {"k": "v"} and props.content_settings.content_type == "text/plain"
    assert props.file_id != src.get_file_properties().file_id
    # The copy is independent of later changes to the source.
    src.upload_range(b"X" * 10, offset=0, length=10)
    assert dst.download_file().readall() == data
    # From a share snapshot into another share, replacing an existing file.
    snap = share.create_snapshot()["snapshot"]
    frozen = service.get_share_client(share.share_name, snapshot=snap).get_file_client("src.bin")
    other = service.create_share(unique_name())
    try:
        target_file = other.get_file_client("c.bin")
        target_file.upload_file(b"old")
        target_file.start_copy_from_url(frozen.url, metadata={"new": "1"})
        assert target_file.download_file().readall() == b"X" * 10 + data[10:]
        assert target_file.get_file_properties().metadata == {"new": "1"}
    finally:
        other.delete_share()
    with pytest.raises(HttpResponseError) as e:
        share.get_file_client("nocopy.bin").start_copy_from_url(share.get_file_client("missing.bin").url)
    assert e.value.status_code == 404 and e.value.error_code == "CannotVerifyCopySource"


# ---- metadata names keep their case ----


def test_metadata_names_keep_their_case(service, share):
    meta = {"CamelCase": "1", "lower": "2", "UPPER_X": "3"}
    share.set_share_metadata(meta)
    assert share.get_share_properties().metadata == meta
    listed = [s for s in service.list_shares(name_starts_with=share.share_name, include_metadata=True)]
    assert listed[0].metadata == meta
    d = share.get_directory_client("Dir")
    d.create_directory(metadata={"DirKey": "d"})
    assert d.get_directory_properties().metadata == {"DirKey": "d"}
    f = share.get_file_client("Dir/f.txt")
    f.upload_file(b"x", metadata={"FileKey": "f"})
    assert f.get_file_properties().metadata == {"FileKey": "f"}
    f.set_file_metadata({"MixedCase": "m"})
    assert f.download_file().properties.metadata == {"MixedCase": "m"}


# ---- share leases ----


def test_share_leases(service):
    import uuid

    share = service.create_share(unique_name())
    lease = share.acquire_lease(lease_duration=15)
    props = share.get_share_properties()
    assert (props.lease.state, props.lease.status, props.lease.duration) == ("leased", "locked", "fixed")
    lease.renew()
    # Deleting a leased share needs its lease.
    with pytest.raises(HttpResponseError) as e:
        share.delete_share()
    assert e.value.status_code == 412 and e.value.error_code == "LeaseIdMissing"
    with pytest.raises(HttpResponseError) as e:
        share.delete_share(lease=str(uuid.uuid4()))
    assert e.value.status_code == 412
    # Other changes go through without the lease, but not with a wrong one.
    share.set_share_metadata({"a": "1"})
    with pytest.raises(HttpResponseError) as e:
        share.set_share_metadata({"a": "2"}, lease=str(uuid.uuid4()))
    assert e.value.status_code == 412
    with pytest.raises(HttpResponseError) as e:
        share.acquire_lease(lease_id=str(uuid.uuid4()))
    assert e.value.status_code == 409 and e.value.error_code == "LeaseAlreadyPresent"
    new_id = str(uuid.uuid4())
    lease.change(new_id)
    assert lease.id == new_id
    lease.release()
    assert share.get_share_properties().lease.state == "available"
    with pytest.raises(HttpResponseError) as e:
        ShareLeaseClient(share, lease_id=new_id).renew()
    assert e.value.status_code == 409 and e.value.error_code == "LeaseNotPresentWithLeaseOperation"
    # Break: an infinite lease with a break period is breaking until it ends; no one may acquire then.
    lease = share.acquire_lease()
    assert share.get_share_properties().lease.duration == "infinite"
    assert lease.break_lease(lease_break_period=30) == 30
    assert share.get_share_properties().lease.state == "breaking"
    with pytest.raises(HttpResponseError) as e:
        share.acquire_lease()
    assert e.value.status_code == 409 and e.value.error_code == "LeaseIsBreakingAndCannotBeAcquired"
    assert lease.break_lease(lease_break_period=0) == 0
    assert share.get_share_properties().lease.state == "broken"
    with pytest.raises(HttpResponseError) as e:
        lease.renew()
    assert e.value.status_code == 409 and e.value.error_code == "LeaseIsBrokenAndCannotBeRenewed"
    share.acquire_lease().release()
    # A leased snapshot keeps the share from being deleted unless leased snapshots are included.
    snap = share.create_snapshot()["snapshot"]
    snap_client = service.get_share_client(share.share_name, snapshot=snap)
    snap_lease = snap_client.acquire_lease()
    assert snap_client.get_share_properties().lease.state == "leased"
    assert share.get_share_properties().lease.state == "available"
    with pytest.raises(HttpResponseError) as e:
        share.delete_share(delete_snapshots=True)
    assert e.value.status_code == 409 and e.value.error_code == "DeleteShareWhenSnapshotLeased"
    assert snap_lease.id
    share.delete_share(delete_snapshots="include-leased")
    assert share.share_name not in [s.name for s in service.list_shares(name_starts_with=share.share_name)]


# ---- stored access policies, si and sip ----


def test_stored_access_policies_and_sas_si_and_sip(target, service, share):
    from azure.storage.fileshare import AccessPolicy

    account, key = account_parts(target)
    url = account_url(service)
    share.get_file_client("p.txt").upload_file(b"policy")
    now = datetime.now(timezone.utc)
    share.set_share_access_policy(
        {
            "readers": AccessPolicy(permission=ShareSasPermissions(read=True, list=True), expiry=now + timedelta(hours=1), start=now - timedelta(minutes=5)),
            "noexpiry": AccessPolicy(permission=ShareSasPermissions(read=True)),
        }
    )
    acl = share.get_share_access_policy()
    ids = {i.id: i.access_policy for i in acl["signed_identifiers"]}
    assert set(ids) == {"readers", "noexpiry"} and ids["readers"].permission == "rl"
    # A SAS naming a policy takes its permissions and times from it.
    sas = generate_share_sas(account, share.share_name, key, policy_id="readers")
    ro = ShareServiceClient(url, credential=sas).get_share_client(share.share_name)
    assert [e["name"] for e in ro.list_directories_and_files()] == ["p.txt"]
    assert ro.get_file_client("p.txt").download_file().readall() == b"policy"
    with pytest.raises(HttpResponseError) as e:
        ro.get_file_client("new.txt").upload_file(b"no")
    assert e.value.status_code == 403 and e.value.error_code == "AuthorizationPermissionMismatch"
    file_sas = generate_file_sas(account, share.share_name, ["p.txt"], key, policy_id="readers")
    assert ShareFileClient(url, share.share_name, "p.txt", credential=file_sas).download_file().readall() == b"policy"
    # The expiry comes from the SAS when the policy has none; giving a field in both is refused.
    ok = generate_share_sas(account, share.share_name, key, policy_id="noexpiry", expiry=now + timedelta(hours=1))
    assert ShareServiceClient(url, credential=ok).get_share_client(share.share_name).get_file_client("p.txt").download_file().readall() == b"policy"
    both = generate_share_sas(account, share.share_name, key, policy_id="readers", permission=ShareSasPermissions(read=True))
    with pytest.raises(HttpResponseError) as e:
        ShareServiceClient(url, credential=both).get_share_client(share.share_name).get_share_properties()
    assert e.value.status_code == 403 and e.value.error_code == "AuthenticationFailed"
    # Removing the policy revokes every SAS that names it.
    share.set_share_access_policy({})
    assert share.get_share_access_policy()["signed_identifiers"] == []
    with pytest.raises(HttpResponseError) as e:
        ro.get_file_client("p.txt").download_file().readall()
    assert e.value.status_code == 403 and e.value.error_code == "AuthenticationFailed"
    if not target.is_emulator:
        return
    # sip: the client's address must be in the range (the emulator is reached from 127.0.0.1).
    expiry = now + timedelta(hours=1)
    perm = ShareSasPermissions(read=True)
    inside = generate_share_sas(account, share.share_name, key, permission=perm, expiry=expiry, ip="127.0.0.0-127.0.0.255")
    assert ShareServiceClient(url, credential=inside).get_share_client(share.share_name).get_file_client("p.txt").download_file().readall() == b"policy"
    outside = generate_share_sas(account, share.share_name, key, permission=perm, expiry=expiry, ip="192.0.2.1")
    with pytest.raises(HttpResponseError) as e:
        ShareServiceClient(url, credential=outside).get_share_client(share.share_name).get_file_client("p.txt").download_file().readall()
    assert e.value.status_code == 403 and e.value.error_code == "AuthorizationSourceIPMismatch"


# ---- Put Range from URL, copy properties, Abort Copy ----


def test_put_range_from_url_copy_properties_and_abort_copy(service, share):
    data = bytes(range(256)) * 64  # 16 KiB
    src = share.get_file_client("range-src.bin")
    src.upload_file(data)
    dst = share.get_file_client("range-dst.bin")
    dst.create_file(8192)
    dst.upload_range_from_url(src.url, offset=1024, length=2048, source_offset=4096)
    got = dst.download_file().readall()
    assert got[:1024] == bytes(1024) and got[1024:3072] == data[4096:6144] and got[3072:] == bytes(8192 - 3072)
    # The destination range holds a copy: later writes to the source do not show through.
    src.upload_range(b"Z" * 2048, offset=4096, length=2048)
    assert dst.download_file(offset=1024, length=2048).readall() == data[4096:6144]
    with pytest.raises(HttpResponseError) as e:
        dst.upload_range_from_url(src.url, offset=8000, length=2048, source_offset=0)
    assert e.value.status_code == 416
    with pytest.raises(HttpResponseError) as e:
        dst.upload_range_from_url(share.get_file_client("nope.bin").url, offset=0, length=10, source_offset=0)
    assert e.value.status_code == 404 and e.value.error_code == "CannotVerifyCopySource"
    # Copy File leaves copy properties that Get File Properties reports.
    copy = share.get_file_client("copied.bin")
    result = copy.start_copy_from_url(src.url)
    props = copy.get_file_properties()
    assert props.copy.id == result["copy_id"] and props.copy.status == "success"
    assert props.copy.source == src.url and props.copy.progress == f"{len(data)}/{len(data)}"
    # (The Python SDK reads x-ms-copy-completion-time under a misspelt key, so look at the header itself.)
    seen = []
    copy.get_file_properties(raw_response_hook=lambda r: seen.append(r.http_response.headers.get("x-ms-copy-completion-time")))
    assert seen[0] and seen[0].endswith("GMT")
    # There is nothing to abort: copies finish within their request.
    with pytest.raises(HttpResponseError) as e:
        copy.abort_copy(result["copy_id"])
    assert e.value.status_code == 409 and e.value.error_code == "NoPendingCopyOperation"
    # Setting properties ends the report of the copy, as in Azure.
    copy.set_http_headers(ContentSettings(content_type="text/plain"))
    assert copy.get_file_properties().copy.id is None


# ---- share properties ----


def test_share_properties_the_sdks_read(target, service):
    name = unique_name()
    share = service.create_share(name, quota=100, access_tier="Hot")
    try:
        p = share.get_share_properties()
        assert (p.quota, p.access_tier, p.protocols) == (100, "Hot", ["SMB"])
        if target.is_emulator:
            # Provisioned figures follow Azure's formulas for a provisioned share of the quota.
            assert (p.provisioned_iops, p.provisioned_ingress_mbps, p.provisioned_egress_mbps, p.provisioned_bandwidth) == (3100, 44, 66, 110)
        share.set_share_properties(access_tier="Cool", quota=200)
        p = share.get_share_properties()
        assert (p.quota, p.access_tier) == (200, "Cool")
        listed = next(iter(service.list_shares(name_starts_with=name)))
        assert (listed.access_tier, listed.quota, listed.protocols) == ("Cool", 200, ["SMB"])
        # (The Python SDK does not surface the change time; the header is there for the others.)
        seen = []
        share.get_share_properties(raw_response_hook=lambda r: seen.append(r.http_response.headers.get("x-ms-access-tier-change-time")))
        assert seen[0] and seen[0].endswith("GMT")
        with pytest.raises(HttpResponseError) as e:
            share.set_share_properties(access_tier="Frozen")
        assert e.value.status_code == 400
    finally:
        share.delete_share()
    if not target.is_emulator:
        return
    nfs = service.create_share(unique_name(), protocols="NFS", root_squash="RootSquash")
    try:
        p = nfs.get_share_properties()
        assert (p.protocols, p.root_squash) == (["NFS"], "RootSquash")
        nfs.set_share_properties(root_squash="AllSquash")
        assert nfs.get_share_properties().root_squash == "AllSquash"
    finally:
        nfs.delete_share()


# ---- HTTPS ----


def test_https_with_a_generated_certificate(tmp_path):
    from azure.core.exceptions import ServiceRequestError

    data = tmp_path / "data"
    emu = EmulatorProcess(str(data), ["--https"])
    try:
        cs = emu.connection_string
        assert "DefaultEndpointsProtocol=https;" in cs and "FileEndpoint=https://127.0.0.1:" in cs
        cert = str(data / "tls" / "cert.pem")
        svc = ShareServiceClient.from_connection_string(cs, connection_verify=cert)
        share = svc.create_share("tls")
        share.get_file_client("t.txt").upload_file(b"over tls", metadata={"Kind": "tls"})
        assert share.get_file_client("t.txt").download_file().readall() == b"over tls"
        # A SAS that insists on HTTPS works over TLS.
        account, key = account_parts(Target("emulator", cs, emu))
        sas = generate_share_sas(account, "tls", key, permission=ShareSasPermissions(read=True), expiry=datetime.now(timezone.utc) + timedelta(hours=1), protocol="https")
        by_sas = ShareServiceClient(svc.url, credential=sas, connection_verify=cert).get_share_client("tls")
        assert by_sas.get_file_client("t.txt").download_file().readall() == b"over tls"
        # A client that does not trust the certificate is refused by its own TLS check.
        with pytest.raises(ServiceRequestError):
            list(ShareServiceClient.from_connection_string(cs, retry_total=0).list_shares())
    finally:
        emu.stop()
