//! The Azure Files operations: which request is which ([`Op::route`]), what a SAS must grant for it
//! ([`Op::need`]), and running it against the store ([`Op::run`]).

mod acl;
mod copy;
mod directory;
mod file;
mod lease;
mod lease_check;
mod share;
mod share_lease;
mod tree;

use super::auth::{Level, Need};
use super::error::{StorageError, StorageResult};
use super::request::{FileBody, Reply, Req};
use super::store::Db;
use http::Method;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    ListShares,
    CreateShare,
    GetShareProperties,
    DeleteShare,
    SetShareMetadata,
    SetShareProperties,
    SnapshotShare,
    LeaseShare,
    SetShareAcl,
    GetShareAcl,
    CreatePermission,
    GetPermission,
    GetShareStats,
    CreateDirectory,
    GetDirectoryProperties,
    DeleteDirectory,
    SetDirectoryProperties,
    SetDirectoryMetadata,
    ListDirectory,
    RenameDirectory,
    CreateFile,
    GetFile,
    GetFileProperties,
    DeleteFile,
    SetFileProperties,
    SetFileMetadata,
    PutRange,
    ListRanges,
    RenameFile,
    LeaseFile,
    AbortCopy,
    ListHandles,
    ForceCloseHandles,
}

impl Op {
    /// Picks the operation from the method, the URL shape and `restype`/`comp`.
    pub fn route(method: &Method, share: &str, path: &[String], query: &[(String, String)]) -> StorageResult<Op> {
        let q = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let restype = q("restype");
        let comp = q("comp");
        let bad_comp = |c: &str| {
            StorageError::invalid_query_parameter("comp", c, "This operation is not supported by the emulator.")
        };
        let m = method;
        use Op::*;
        if share.is_empty() {
            return match (m, comp) {
                (&Method::GET, Some("list")) => Ok(ListShares),
                (&Method::GET, None) => Err(StorageError::missing_required_query_parameter("comp")),
                (&Method::GET | &Method::PUT, Some(c)) => Err(bad_comp(c)),
                _ => Err(StorageError::unsupported_http_verb()),
            };
        }
        let is_dir = match restype {
            Some("share") if path.is_empty() => {
                return match (m, comp) {
                    (&Method::PUT, None) => Ok(CreateShare),
                    (&Method::GET | &Method::HEAD, None) => Ok(GetShareProperties),
                    (&Method::DELETE, None) => Ok(DeleteShare),
                    (&Method::PUT, Some("metadata")) => Ok(SetShareMetadata),
                    (&Method::PUT, Some("properties")) => Ok(SetShareProperties),
                    (&Method::PUT, Some("snapshot")) => Ok(SnapshotShare),
                    (&Method::PUT, Some("lease")) => Ok(LeaseShare),
                    (&Method::PUT, Some("acl")) => Ok(SetShareAcl),
                    (&Method::GET | &Method::HEAD, Some("acl")) => Ok(GetShareAcl),
                    (&Method::PUT, Some("filepermission")) => Ok(CreatePermission),
                    (&Method::GET, Some("filepermission")) => Ok(GetPermission),
                    (&Method::GET | &Method::HEAD, Some("stats")) => Ok(GetShareStats),
                    (&Method::GET | &Method::PUT | &Method::HEAD, Some(c)) => Err(bad_comp(c)),
                    _ => Err(StorageError::unsupported_http_verb()),
                };
            }
            Some("directory") => true,
            None if !path.is_empty() => false,
            None => return Err(StorageError::missing_required_query_parameter("restype")),
            Some(r) => return Err(StorageError::invalid_query_parameter("restype", r, "Unknown resource type.")),
        };
        if is_dir {
            match (m, comp) {
                (&Method::PUT, None) => Ok(CreateDirectory),
                (&Method::GET | &Method::HEAD, None) => Ok(GetDirectoryProperties),
                (&Method::DELETE, None) => Ok(DeleteDirectory),
                (&Method::PUT, Some("properties")) => Ok(SetDirectoryProperties),
                (&Method::PUT, Some("metadata")) => Ok(SetDirectoryMetadata),
                (&Method::PUT, Some("rename")) => Ok(RenameDirectory),
                (&Method::GET, Some("list")) => Ok(ListDirectory),
                (&Method::GET, Some("listhandles")) => Ok(ListHandles),
                (&Method::PUT, Some("forceclosehandles")) => Ok(ForceCloseHandles),
                (&Method::GET | &Method::PUT | &Method::HEAD, Some(c)) => Err(bad_comp(c)),
                _ => Err(StorageError::unsupported_http_verb()),
            }
        } else {
            match (m, comp) {
                (&Method::PUT, None) => Ok(CreateFile),
                (&Method::GET, None) => Ok(GetFile),
                (&Method::HEAD, None) => Ok(GetFileProperties),
                (&Method::DELETE, None) => Ok(DeleteFile),
                (&Method::PUT, Some("properties")) => Ok(SetFileProperties),
                (&Method::PUT, Some("metadata")) => Ok(SetFileMetadata),
                (&Method::PUT, Some("range")) => Ok(PutRange),
                (&Method::PUT, Some("rename")) => Ok(RenameFile),
                (&Method::PUT, Some("lease")) => Ok(LeaseFile),
                (&Method::PUT, Some("copy")) => Ok(AbortCopy),
                (&Method::GET, Some("listhandles")) => Ok(ListHandles),
                (&Method::PUT, Some("forceclosehandles")) => Ok(ForceCloseHandles),
                (&Method::GET, Some("rangelist")) => Ok(ListRanges),
                (&Method::GET | &Method::PUT | &Method::HEAD, Some(c)) => Err(bad_comp(c)),
                _ => Err(StorageError::unsupported_http_verb()),
            }
        }
    }

    /// What a SAS must grant: any one of the permission letters, at the resource level.
    pub fn need(self) -> Need {
        use Level::*;
        use Op::*;
        let (perms, level) = match self {
            ListShares => ("l", Service),
            CreateShare | SnapshotShare => ("c", Share),
            DeleteShare => ("d", Share),
            GetShareProperties | GetShareStats | GetPermission | GetShareAcl => ("r", Share),
            SetShareMetadata | SetShareProperties | LeaseShare | SetShareAcl => ("w", Share),
            CreatePermission => ("cw", Share),
            CreateDirectory | CreateFile => ("cw", Object),
            GetDirectoryProperties | GetFile | GetFileProperties | ListRanges => ("r", Object),
            DeleteDirectory | DeleteFile => ("d", Object),
            SetDirectoryProperties
            | SetDirectoryMetadata
            | SetFileProperties
            | SetFileMetadata
            | PutRange
            | RenameDirectory
            | RenameFile
            | LeaseFile
            | AbortCopy => ("w", Object),
            ListDirectory | ListHandles => ("l", Object),
            ForceCloseHandles => ("w", Object),
        };
        Need { perms, level }
    }

    /// True if the operation may change state (it then takes the write lock up front).
    pub fn writes(self) -> bool {
        use Op::*;
        !matches!(
            self,
            ListShares
                | GetShareProperties
                | GetShareAcl
                | GetShareStats
                | GetPermission
                | GetDirectoryProperties
                | ListDirectory
                | GetFile
                | GetFileProperties
                | ListRanges
                | ListHandles
                | ForceCloseHandles
        )
    }

    /// Runs the operation in the request's transaction. Changes to a virtual share are refused here,
    /// for every operation, apart from the share-level ones that handle it themselves.
    pub fn run(self, db: &Db, req: &Req) -> StorageResult<Reply> {
        use Op::*;
        if self.writes()
            && !matches!(self, CreateShare | DeleteShare | SnapshotShare | LeaseShare | SetShareAcl)
            && db.is_virtual(&req.share)
        {
            return Err(StorageError::virtual_share_read_only());
        }
        match self {
            ListShares => share::list(db, req),
            CreateShare => share::create(db, req),
            GetShareProperties => share::properties(db, req),
            DeleteShare => share::delete(db, req),
            SetShareMetadata => share::set_metadata(db, req),
            SetShareProperties => share::set_properties(db, req),
            SnapshotShare => share::snapshot(db, req),
            LeaseShare => share_lease::lease_share(db, req),
            SetShareAcl => acl::set(db, req),
            GetShareAcl => acl::get(db, req),
            CreatePermission => share::create_permission(db, req),
            GetPermission => share::get_permission(db, req),
            GetShareStats => share::stats(db, req),
            CreateDirectory => directory::create(db, req),
            GetDirectoryProperties => directory::properties(db, req),
            DeleteDirectory => directory::delete(db, req),
            SetDirectoryProperties => directory::set_properties(db, req),
            SetDirectoryMetadata => directory::set_metadata(db, req),
            ListDirectory => directory::list(db, req),
            RenameDirectory => tree::rename(db, req, true),
            CreateFile => file::create(db, req),
            GetFile => file::get(db, req),
            GetFileProperties => file::properties(db, req),
            DeleteFile => file::delete(db, req),
            SetFileProperties => file::set_properties(db, req),
            SetFileMetadata => file::set_metadata(db, req),
            PutRange => file::put_range(db, req),
            ListRanges => file::list_ranges(db, req),
            RenameFile => tree::rename(db, req, false),
            LeaseFile => lease::lease_file(db, req),
            AbortCopy => copy::abort_copy(db, req),
            ListHandles => tree::list_handles(db, req),
            ForceCloseHandles => tree::force_close_handles(db, req),
        }
    }
}

/// The bytes `[start, end)` of a file body (a part of `body`'s range), read in the transaction the
/// operation ran in.
pub fn read_file_body(db: &Db, body: &FileBody, start: i64, end: i64) -> StorageResult<Vec<u8>> {
    tree::read(db, &body.share, &body.node, start, end)
}
