//! The emulator's state: one SQLite database (WAL) in the data directory.
//!
//! Layout (see `docs/emulator.md`):
//! - `shares`: one row per live share (`snapshot = ''`) and per share snapshot; `sid` numbers them.
//! - `nodes`: files and directories of every share version, keyed `(sid, file_id)`, with a unique index
//!   on `(sid, parent_id, name_key)` that serves lookups, case-insensitive uniqueness and sorted listing.
//! - `blobs`: immutable byte runs (at most 4 MiB, one per Put Range call).
//! - `extents`: per file, which byte ranges hold data and where: `(pos, length) -> (blob_id, blob_offset)`.
//!   Unwritten ranges read as zeros. A snapshot copies node and extent rows, never bytes.
//! - `permissions`: SDDL strings per share, addressed by their permission key.
//! - `leases` (files) and `share_leases` (a share or share snapshot): lease ids and their state.
//! - `copies`: the copy properties of files made by Copy File.
//! - `access_policies`: the stored access policies of a share (Set Share ACL), in the order given.
//! - `virtual_versions`: for each share version of a virtual share (`super::virtual_share`), its spec
//!   and generation. A virtual share has rows in `shares` (so share-level operations treat it like any
//!   other) but none in `nodes` or `extents`: its tree is computed.
//!
//! Every request runs in one transaction ([`Store::run`], [`Store::read`]): changes on the one writer
//! connection, reads on a pool of reader connections.

use super::dir_cache::DirCache;
use super::error::{StorageError, StorageResult};
use super::virtual_share::{VirtualShare, VirtualShareSpec};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

pub use super::node::{
    ContentHeaders, CopyProps, Extent, FIRST_FILE_ID, Lease, MAX_EXTENT, Metadata, Node, ROOT_FILE_ID, ShareLease,
    name_key,
};

/// One share or share snapshot.
#[derive(Debug, Clone)]
pub struct ShareRow {
    pub sid: i64,
    pub name: String,
    /// Empty for the live share, else the snapshot id (`2026-11-25T14:43:24.1234567Z`).
    pub snapshot: String,
    /// Quota in GiB.
    pub quota: i64,
    pub metadata: Metadata,
    /// Ticks; the ETag derives from it.
    pub last_modified: i64,
    pub props: ShareProps,
    /// For a virtual share: its generator and this version's generation.
    pub virt: Option<VirtualAt>,
}

/// Share properties besides quota and metadata, stored as JSON in `shares.props`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ShareProps {
    /// `TransactionOptimized`, `Hot`, `Cool` or `Premium`.
    pub access_tier: String,
    /// When the tier was last set, ticks; `None` if never changed since creation.
    pub access_tier_change_time: Option<i64>,
    /// `SMB` or `NFS`.
    pub protocols: String,
    /// NFS shares: `NoRootSquash`, `RootSquash` or `AllSquash`.
    pub root_squash: Option<String>,
    /// `x-ms-enable-snapshot-virtual-directory-access` (NFS shares), as set.
    pub snapshot_dir_access: Option<bool>,
}

impl Default for ShareProps {
    fn default() -> Self {
        ShareProps {
            access_tier: "TransactionOptimized".into(),
            access_tier_change_time: None,
            protocols: "SMB".into(),
            root_squash: None,
            snapshot_dir_access: None,
        }
    }
}

/// A stored access policy of a share (Set Share ACL): a SAS naming it with `si` takes the fields it
/// does not give itself from here. Empty strings are fields the policy leaves out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessPolicy {
    /// At most 64 characters.
    pub id: String,
    /// ISO 8601 UTC, as given.
    pub start: String,
    pub expiry: String,
    /// Permission letters (`rcwdl`).
    pub permission: String,
}

/// A version of a virtual share: the tree of `share` at `generation`.
#[derive(Debug, Clone)]
pub struct VirtualAt {
    pub share: Arc<VirtualShare>,
    pub generation: u32,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS shares(
    sid INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    snapshot TEXT NOT NULL,
    quota INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    last_modified INTEGER NOT NULL,
    next_file_id INTEGER NOT NULL,
    props TEXT NOT NULL DEFAULT '{}',
    UNIQUE(name, snapshot));
CREATE TABLE IF NOT EXISTS nodes(
    sid INTEGER NOT NULL,
    file_id INTEGER NOT NULL,
    parent_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    is_dir INTEGER NOT NULL,
    size INTEGER NOT NULL,
    attributes INTEGER NOT NULL,
    creation_time INTEGER NOT NULL,
    last_write_time INTEGER NOT NULL,
    change_time INTEGER NOT NULL,
    last_modified INTEGER NOT NULL,
    permission_key TEXT NOT NULL,
    metadata TEXT NOT NULL,
    content_type TEXT, content_encoding TEXT, content_language TEXT, cache_control TEXT,
    content_disposition TEXT, content_md5 BLOB,
    mode TEXT, owner TEXT, grp TEXT,
    PRIMARY KEY(sid, file_id)) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS nodes_by_name ON nodes(sid, parent_id, name_key);
CREATE TABLE IF NOT EXISTS blobs(blob_id INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS extents(
    sid INTEGER NOT NULL,
    file_id INTEGER NOT NULL,
    pos INTEGER NOT NULL,
    length INTEGER NOT NULL,
    blob_id INTEGER NOT NULL,
    blob_offset INTEGER NOT NULL,
    PRIMARY KEY(sid, file_id, pos)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS extents_by_blob ON extents(blob_id);
CREATE TABLE IF NOT EXISTS permissions(
    share TEXT NOT NULL,
    key TEXT NOT NULL,
    sddl TEXT NOT NULL,
    PRIMARY KEY(share, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases(
    sid INTEGER NOT NULL,
    file_id INTEGER NOT NULL,
    lease_id TEXT NOT NULL,
    broken INTEGER NOT NULL,
    PRIMARY KEY(sid, file_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS access_policies(
    share TEXT NOT NULL,
    pos INTEGER NOT NULL,
    id TEXT NOT NULL,
    start TEXT NOT NULL,
    expiry TEXT NOT NULL,
    permission TEXT NOT NULL,
    PRIMARY KEY(share, pos)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS copies(
    sid INTEGER NOT NULL,
    file_id INTEGER NOT NULL,
    copy_id TEXT NOT NULL,
    source TEXT NOT NULL,
    completed INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    PRIMARY KEY(sid, file_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS share_leases(
    sid INTEGER PRIMARY KEY,
    lease_id TEXT NOT NULL,
    duration_secs INTEGER NOT NULL,
    expires INTEGER,
    broken_at INTEGER);
CREATE TABLE IF NOT EXISTS virtual_versions(
    sid INTEGER PRIMARY KEY,
    spec TEXT NOT NULL,
    generation INTEGER NOT NULL);
";

/// Schema version (`PRAGMA user_version`): 2 added `shares.props`.
const SCHEMA_VERSION: i64 = 2;

/// Brings a database made by an older emulator to [`SCHEMA_VERSION`] (new tables come from [`SCHEMA`]).
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version < 2 {
        let has_props: bool =
            conn.query_row("SELECT COUNT(*) FROM pragma_table_info('shares') WHERE name = 'props'", [], |r| r.get(0))?;
        if !has_props {
            conn.execute_batch("ALTER TABLE shares ADD COLUMN props TEXT NOT NULL DEFAULT '{}'")?;
        }
    }
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)
}

/// The configured virtual shares by name.
type Virtuals = HashMap<String, Arc<VirtualShare>>;

/// The database: one connection for changes (one writing request at a time, as SQLite allows) and a
/// pool of reader connections (WAL lets them read a consistent snapshot while a write goes on).
pub struct Store {
    writer: Mutex<Connection>,
    readers: Arc<Readers>,
    virtuals: Arc<Virtuals>,
    dirs: Arc<DirCache>,
}

/// Idle reader connections. A request takes one or opens a new one (never waits), and gives it back;
/// at most [`MAX_IDLE_READERS`] are kept.
struct Readers {
    path: std::path::PathBuf,
    idle: Mutex<Vec<Connection>>,
}

/// Reader connections kept open between requests (at least as many as requests run in the store at
/// once, so steady traffic never reopens one).
pub const MAX_IDLE_READERS: usize = 16;
/// Page cache of the writer and of each reader, KiB.
const WRITER_CACHE_KIB: i64 = 64 * 1024;
const READER_CACHE_KIB: i64 = 16 * 1024;

impl Readers {
    fn take(&self) -> StorageResult<Connection> {
        if let Some(c) = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Ok(c);
        }
        open_reader(&self.path).map_err(|e| StorageError::internal(format!("cannot open a reader: {e}")))
    }

    fn give_back(&self, c: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE_READERS {
            idle.push(c);
        }
    }
}

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.pragma_update(None, "query_only", true)?;
    conn.pragma_update(None, "cache_size", -READER_CACHE_KIB)?;
    configure(&conn)?;
    Ok(conn)
}

/// What every connection gets: a busy timeout, a statement cache, and the query planner stability
/// guarantee. Without it SQLite (built with STAT4) re-prepares a statement whose plan may depend on a
/// bound value (the extents range query) whenever that value changes, a parse per request.
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.set_prepared_statement_cache_capacity(64);
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
}

/// A reader connection inside a read transaction (`BEGIN`, a snapshot from its first read on): what a
/// read request runs in, kept alive for as long as a streamed body still reads from it. Dropping it
/// ends the transaction and returns the connection to the pool.
pub struct ReadTx {
    conn: Option<Connection>,
    readers: Arc<Readers>,
    virtuals: Arc<Virtuals>,
    dirs: Arc<DirCache>,
}

impl ReadTx {
    /// Queries within this transaction.
    pub fn db(&self) -> Db<'_> {
        Db {
            c: self.conn.as_ref().expect("a ReadTx holds its connection until dropped"),
            virtuals: &self.virtuals,
            dirs: &self.dirs,
        }
    }
}

impl Drop for ReadTx {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            // A read-only transaction: ending it cannot fail in a way that matters; a connection that
            // cannot end it is not reused.
            if c.prepare_cached("COMMIT").and_then(|mut st| st.execute([])).is_ok() {
                self.readers.give_back(c);
            }
        }
    }
}

impl Store {
    /// Opens (creating if needed) `dir/emulator.sqlite`, with the virtual shares of `virtual_shares`
    /// (see [`register_virtual_shares`]).
    pub fn open(dir: &Path, virtual_shares: &[VirtualShareSpec]) -> anyhow::Result<Store> {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create data directory {}: {e}", dir.display()))?;
        let path = dir.join("emulator.sqlite");
        let mut conn = Connection::open(&path).map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL in WAL mode: a crash of the process never loses a committed request; a power loss may
        // lose the last few.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
        configure(&conn)?;
        conn.execute_batch(SCHEMA).map_err(|e| anyhow::anyhow!("cannot create schema in {}: {e}", path.display()))?;
        migrate(&conn).map_err(|e| anyhow::anyhow!("cannot update the schema of {}: {e}", path.display()))?;
        register_virtual_shares(&mut conn, virtual_shares)
            .map_err(|e| anyhow::anyhow!("cannot set up the virtual shares in {}: {e}", path.display()))?;
        let virtuals =
            virtual_shares.iter().map(|s| (s.name.clone(), Arc::new(VirtualShare::new(s.clone())))).collect();
        let readers = Arc::new(Readers { path, idle: Mutex::new(Vec::new()) });
        Ok(Store { writer: Mutex::new(conn), readers, virtuals: Arc::new(virtuals), dirs: Arc::default() })
    }

    /// Runs `f` in one transaction: committed if it returns `Ok`, rolled back otherwise. A write
    /// (`write`) takes the one writer connection (`BEGIN IMMEDIATE`); a read runs on a reader.
    /// Blocking: call from `spawn_blocking`.
    pub fn run<T>(&self, write: bool, f: impl FnOnce(&Db) -> StorageResult<T>) -> StorageResult<T> {
        if !write {
            return f(&self.read()?.db());
        }
        let mut conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&Db { c: &tx, virtuals: &self.virtuals, dirs: &self.dirs })?;
        tx.commit()?;
        Ok(out)
    }

    /// A read transaction on a reader connection. Blocking: call from `spawn_blocking`.
    pub fn read(&self) -> StorageResult<ReadTx> {
        let conn = self.readers.take()?;
        conn.prepare_cached("BEGIN")?.execute([])?;
        Ok(ReadTx {
            conn: Some(conn),
            readers: Arc::clone(&self.readers),
            virtuals: Arc::clone(&self.virtuals),
            dirs: Arc::clone(&self.dirs),
        })
    }
}

/// Makes the share rows of the virtual shares match `specs`: versions of virtual shares that are no
/// longer configured, or configured with another spec, are dropped (their snapshots meant another
/// tree); a configured share without a row gets a live row at generation 0. A stored share of the same
/// name is an error. The default and one more permission are stored for each virtual share.
fn register_virtual_shares(conn: &mut Connection, specs: &[VirtualShareSpec]) -> anyhow::Result<()> {
    let tx = conn.transaction()?;
    let mut seen = std::collections::HashSet::new();
    for spec in specs {
        if !seen.insert(spec.name.as_str()) {
            anyhow::bail!("virtual share {} is given twice", spec.name);
        }
    }
    let versions: Vec<(i64, String, String)> = tx
        .prepare("SELECT s.sid, s.name, v.spec FROM shares s JOIN virtual_versions v ON v.sid = s.sid")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    for (sid, name, stored) in versions {
        if specs.iter().find(|s| s.name == name).map(VirtualShareSpec::fingerprint).as_deref() != Some(stored.as_str())
        {
            tx.execute("DELETE FROM shares WHERE sid = ?1", [sid])?;
            tx.execute("DELETE FROM virtual_versions WHERE sid = ?1", [sid])?;
        }
    }
    for spec in specs {
        let live: Option<(i64, bool)> = tx
            .query_row(
                "SELECT sid, EXISTS(SELECT 1 FROM virtual_versions v WHERE v.sid = shares.sid) FROM shares \
                 WHERE name = ?1 AND snapshot = ''",
                [&spec.name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        match live {
            Some((_, true)) => {}
            Some((_, false)) => anyhow::bail!(
                "{} is a stored share in this data directory; give the virtual share another name",
                spec.name
            ),
            None => {
                let now = super::clock::wall_ticks();
                tx.execute(
                    "INSERT INTO shares(name, snapshot, quota, metadata, last_modified, next_file_id) \
                     VALUES (?1, '', 5120, '[]', ?2, ?3)",
                    params![spec.name, now, to_i64(FIRST_FILE_ID)],
                )?;
                tx.execute(
                    "INSERT INTO virtual_versions(sid, spec, generation) VALUES (?1, ?2, 0)",
                    params![tx.last_insert_rowid(), spec.fingerprint()],
                )?;
            }
        }
        for sddl in [super::node::DEFAULT_SDDL, super::virtual_share::OTHER_SDDL] {
            tx.execute(
                "INSERT OR IGNORE INTO permissions(share, key, sddl) VALUES (?1, ?2, ?3)",
                params![spec.name, super::node::permission_key(sddl), sddl],
            )?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Queries and changes within one transaction.
pub struct Db<'c> {
    c: &'c Connection,
    virtuals: &'c Virtuals,
    dirs: &'c DirCache,
}

fn to_i64(id: u64) -> i64 {
    id as i64
}
fn to_u64(id: i64) -> u64 {
    id as u64
}

fn metadata_to_json(m: &Metadata) -> String {
    serde_json::to_string(m).expect("metadata serializes")
}
fn metadata_from_json(s: &str) -> Metadata {
    serde_json::from_str(s).unwrap_or_default()
}
fn props_to_json(p: &ShareProps) -> String {
    serde_json::to_string(p).expect("share properties serialize")
}

/// Columns of a share row; the last is the generation of a virtual share version (NULL otherwise).
const SHARE_COLS: &str = "sid, name, snapshot, quota, metadata, last_modified, props, \
    (SELECT generation FROM virtual_versions v WHERE v.sid = shares.sid)";

/// A share row read with [`SHARE_COLS`]; `virtuals` supplies the generator of a virtual share.
fn share_from_row(virtuals: &Virtuals, r: &Row) -> rusqlite::Result<ShareRow> {
    let name: String = r.get(1)?;
    let generation: Option<u32> = r.get(7)?;
    let virt = generation
        .and_then(|generation| virtuals.get(&name).map(|share| VirtualAt { share: Arc::clone(share), generation }));
    Ok(ShareRow {
        sid: r.get(0)?,
        name,
        snapshot: r.get(2)?,
        quota: r.get(3)?,
        metadata: metadata_from_json(&r.get::<_, String>(4)?),
        last_modified: r.get(5)?,
        props: serde_json::from_str(&r.get::<_, String>(6)?).unwrap_or_default(),
        virt,
    })
}

/// Extents of a file starting in `(?3, ?4)`, by position.
const EXTENTS_SQL: &str = "SELECT pos, length, blob_id, blob_offset FROM extents \
    WHERE sid = ?1 AND file_id = ?2 AND pos > ?3 AND pos < ?4 ORDER BY pos";

const NODE_COLS: &str = "file_id, parent_id, name, is_dir, size, attributes, creation_time, last_write_time, \
    change_time, last_modified, permission_key, metadata, content_type, content_encoding, content_language, \
    cache_control, content_disposition, content_md5, mode, owner, grp";

fn node_from_row(r: &Row) -> rusqlite::Result<Node> {
    Ok(Node {
        file_id: to_u64(r.get(0)?),
        parent_id: to_u64(r.get(1)?),
        name: r.get(2)?,
        is_dir: r.get(3)?,
        size: r.get(4)?,
        attributes: r.get(5)?,
        creation_time: r.get(6)?,
        last_write_time: r.get(7)?,
        change_time: r.get(8)?,
        last_modified: r.get(9)?,
        permission_key: r.get(10)?,
        metadata: metadata_from_json(&r.get::<_, String>(11)?),
        content: ContentHeaders {
            content_type: r.get(12)?,
            content_encoding: r.get(13)?,
            content_language: r.get(14)?,
            cache_control: r.get(15)?,
            content_disposition: r.get(16)?,
            content_md5: r.get(17)?,
        },
        mode: r.get(18)?,
        owner: r.get(19)?,
        group: r.get(20)?,
    })
}

impl Db<'_> {
    /// Directories of share snapshots by path (see [`DirCache`]).
    pub fn dir_cache(&self) -> &DirCache {
        self.dirs
    }

    // ---- shares ----

    /// The share `name` at `snapshot` (`""` for the live share).
    pub fn share(&self, name: &str, snapshot: &str) -> StorageResult<Option<ShareRow>> {
        let sql = format!("SELECT {SHARE_COLS} FROM shares WHERE name = ?1 AND snapshot = ?2");
        Ok(self
            .c
            .prepare_cached(&sql)?
            .query_row(params![name, snapshot], |r| share_from_row(self.virtuals, r))
            .optional()?)
    }

    /// The live share, or `ShareNotFound`.
    pub fn live_share(&self, name: &str) -> StorageResult<ShareRow> {
        self.share(name, "")?.ok_or_else(StorageError::share_not_found)
    }

    /// The share version a request addresses: live, or the snapshot named by `sharesnapshot`.
    pub fn share_at(&self, name: &str, snapshot: Option<&str>) -> StorageResult<ShareRow> {
        match snapshot {
            None => self.live_share(name),
            Some(s) => match self.share(name, s)? {
                Some(row) => Ok(row),
                None if self.share(name, "")?.is_none() => Err(StorageError::share_not_found()),
                None => Err(StorageError::share_snapshot_not_found()),
            },
        }
    }

    /// Shares (and, if asked, their snapshots) whose name starts with `prefix`, ordered by name then
    /// snapshot (live share first), starting at `from` (inclusive), at most `limit` rows.
    pub fn list_shares(
        &self,
        prefix: &str,
        from: (&str, &str),
        limit: usize,
        with_snapshots: bool,
    ) -> StorageResult<Vec<ShareRow>> {
        let sql = format!(
            "SELECT {SHARE_COLS} FROM shares WHERE (name, snapshot) >= (?1, ?2) AND substr(name, 1, length(?3)) = ?3 \
             AND (?4 OR snapshot = '') ORDER BY name, snapshot LIMIT ?5"
        );
        let mut stmt = self.c.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![from.0, from.1, prefix, with_snapshots, limit as i64], |r| {
            share_from_row(self.virtuals, r)
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Creates a live share with its root directory.
    pub fn create_share(
        &self,
        name: &str,
        quota: i64,
        metadata: &Metadata,
        props: &ShareProps,
        now: i64,
        root: &Node,
    ) -> StorageResult<ShareRow> {
        self.c
            .prepare_cached(
                "INSERT INTO shares(name, snapshot, quota, metadata, last_modified, next_file_id, props) \
             VALUES (?1, '', ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                name,
                quota,
                metadata_to_json(metadata),
                now,
                to_i64(FIRST_FILE_ID),
                props_to_json(props)
            ])?;
        let sid = self.c.last_insert_rowid();
        self.insert_node(sid, root)?;
        Ok(ShareRow {
            sid,
            name: name.to_string(),
            snapshot: String::new(),
            quota,
            metadata: metadata.clone(),
            last_modified: now,
            props: props.clone(),
            virt: None,
        })
    }

    /// Saves quota, metadata, last-modified and properties of a share row.
    pub fn update_share(&self, s: &ShareRow) -> StorageResult<()> {
        self.c
            .prepare_cached(
                "UPDATE shares SET quota = ?2, metadata = ?3, last_modified = ?4, props = ?5 WHERE sid = ?1",
            )?
            .execute(params![
                s.sid,
                s.quota,
                metadata_to_json(&s.metadata),
                s.last_modified,
                props_to_json(&s.props)
            ])?;
        Ok(())
    }

    /// Deletes one share version with its tree and any blobs nothing else references.
    pub fn delete_share(&self, sid: i64) -> StorageResult<()> {
        self.dirs.clear();
        let blobs: Vec<i64> = {
            let mut stmt = self.c.prepare_cached("SELECT DISTINCT blob_id FROM extents WHERE sid = ?1")?;
            stmt.query_map([sid], |r| r.get(0))?.collect::<Result<_, _>>()?
        };
        self.c.prepare_cached("DELETE FROM extents WHERE sid = ?1")?.execute([sid])?;
        self.c.prepare_cached("DELETE FROM nodes WHERE sid = ?1")?.execute([sid])?;
        self.c.prepare_cached("DELETE FROM shares WHERE sid = ?1")?.execute([sid])?;
        self.c.prepare_cached("DELETE FROM virtual_versions WHERE sid = ?1")?.execute([sid])?;
        self.c.prepare_cached("DELETE FROM leases WHERE sid = ?1")?.execute([sid])?;
        self.c.prepare_cached("DELETE FROM share_leases WHERE sid = ?1")?.execute([sid])?;
        self.c.prepare_cached("DELETE FROM copies WHERE sid = ?1")?.execute([sid])?;
        self.collect_blobs(&blobs)
    }

    /// Snapshot ids of share `name`, oldest first.
    pub fn snapshots_of(&self, name: &str) -> StorageResult<Vec<ShareRow>> {
        let sql = format!("SELECT {SHARE_COLS} FROM shares WHERE name = ?1 AND snapshot != '' ORDER BY snapshot");
        let mut stmt = self.c.prepare_cached(&sql)?;
        let rows = stmt.query_map([name], |r| share_from_row(self.virtuals, r))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Freezes the live share `live` as snapshot `snapshot`: copies its node and extent rows.
    pub fn create_snapshot(&self, live: &ShareRow, snapshot: &str) -> StorageResult<ShareRow> {
        self.c
            .prepare_cached(
                "INSERT INTO shares(name, snapshot, quota, metadata, last_modified, next_file_id, props) \
                 SELECT name, ?2, quota, metadata, last_modified, next_file_id, props FROM shares WHERE sid = ?1",
            )?
            .execute(params![live.sid, snapshot])?;
        let sid = self.c.last_insert_rowid();
        self.c
            .prepare_cached(&format!(
                "INSERT INTO nodes(sid, name_key, {NODE_COLS}) SELECT ?2, name_key, {NODE_COLS} FROM nodes WHERE sid = ?1"
            ))?
            .execute(params![live.sid, sid])?;
        self.c
            .prepare_cached(
                "INSERT INTO extents(sid, file_id, pos, length, blob_id, blob_offset) \
                 SELECT ?2, file_id, pos, length, blob_id, blob_offset FROM extents WHERE sid = ?1",
            )?
            .execute(params![live.sid, sid])?;
        self.c
            .prepare_cached(
                "INSERT INTO copies(sid, file_id, copy_id, source, completed, bytes) \
                 SELECT ?2, file_id, copy_id, source, completed, bytes FROM copies WHERE sid = ?1",
            )?
            .execute(params![live.sid, sid])?;
        self.c
            .prepare_cached(
                "INSERT INTO virtual_versions(sid, spec, generation) SELECT ?2, spec, generation FROM virtual_versions \
                 WHERE sid = ?1",
            )?
            .execute(params![live.sid, sid])?;
        Ok(ShareRow { sid, snapshot: snapshot.to_string(), ..live.clone() })
    }

    /// True if `name` is a virtual share (read-only apart from snapshots).
    pub fn is_virtual(&self, name: &str) -> bool {
        self.virtuals.contains_key(name)
    }

    /// Moves the live version of a virtual share to its next generation.
    pub fn advance_generation(&self, live_sid: i64) -> StorageResult<()> {
        self.c
            .prepare_cached("UPDATE virtual_versions SET generation = generation + 1 WHERE sid = ?1")?
            .execute([live_sid])?;
        Ok(())
    }

    /// A new FileId for share version `sid` (live shares only), never handed out before.
    pub fn alloc_file_id(&self, sid: i64) -> StorageResult<u64> {
        let id: i64 = self
            .c
            .prepare_cached(
                "UPDATE shares SET next_file_id = next_file_id + 1 WHERE sid = ?1 RETURNING next_file_id - 1",
            )?
            .query_row([sid], |r| r.get(0))?;
        Ok(to_u64(id))
    }

    /// Bytes used by files in share version `sid` (logical sizes).
    pub fn share_usage(&self, sid: i64) -> StorageResult<i64> {
        Ok(self
            .c
            .prepare_cached("SELECT COALESCE(SUM(size), 0) FROM nodes WHERE sid = ?1")?
            .query_row([sid], |r| r.get(0))?)
    }

    // ---- nodes ----

    pub fn node(&self, sid: i64, file_id: u64) -> StorageResult<Option<Node>> {
        let sql = format!("SELECT {NODE_COLS} FROM nodes WHERE sid = ?1 AND file_id = ?2");
        Ok(self.c.prepare_cached(&sql)?.query_row(params![sid, to_i64(file_id)], node_from_row).optional()?)
    }

    /// The child of `parent` named `name` (case-insensitively).
    pub fn child(&self, sid: i64, parent: u64, name: &str) -> StorageResult<Option<Node>> {
        let sql = format!("SELECT {NODE_COLS} FROM nodes WHERE sid = ?1 AND parent_id = ?2 AND name_key = ?3");
        Ok(self
            .c
            .prepare_cached(&sql)?
            .query_row(params![sid, to_i64(parent), name_key(name)], node_from_row)
            .optional()?)
    }

    /// Adds node `n` to share number `sid`.
    pub fn insert_node(&self, sid: i64, n: &Node) -> StorageResult<()> {
        let sql = format!(
            "INSERT INTO nodes(sid, name_key, {NODE_COLS}) VALUES \
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)"
        );
        self.write_node(&sql, sid, n)
    }

    /// Saves every column of `n` (including a new parent or name).
    pub fn update_node(&self, sid: i64, n: &Node) -> StorageResult<()> {
        let sql = "UPDATE nodes SET name_key = ?2, parent_id = ?4, name = ?5, is_dir = ?6, size = ?7, attributes = ?8, \
            creation_time = ?9, last_write_time = ?10, change_time = ?11, last_modified = ?12, permission_key = ?13, \
            metadata = ?14, content_type = ?15, content_encoding = ?16, content_language = ?17, cache_control = ?18, \
            content_disposition = ?19, content_md5 = ?20, mode = ?21, owner = ?22, grp = ?23 \
            WHERE sid = ?1 AND file_id = ?3";
        self.write_node(sql, sid, n)
    }

    /// Runs `sql` with node `n` of share number `sid` bound as `?1` = sid, `?2` = name key, then
    /// [`NODE_COLS`] in order from `?3`.
    fn write_node(&self, sql: &str, sid: i64, n: &Node) -> StorageResult<()> {
        self.c.prepare_cached(sql)?.execute(params![
            sid,
            name_key(&n.name),
            to_i64(n.file_id),
            to_i64(n.parent_id),
            n.name,
            n.is_dir,
            n.size,
            n.attributes,
            n.creation_time,
            n.last_write_time,
            n.change_time,
            n.last_modified,
            n.permission_key,
            metadata_to_json(&n.metadata),
            n.content.content_type,
            n.content.content_encoding,
            n.content.content_language,
            n.content.cache_control,
            n.content.content_disposition,
            n.content.content_md5,
            n.mode,
            n.owner,
            n.group,
        ])?;
        Ok(())
    }

    /// Deletes a node, its content, its lease and its copy properties.
    pub fn delete_node(&self, sid: i64, file_id: u64) -> StorageResult<()> {
        self.clear(sid, file_id, 0, i64::MAX)?;
        self.delete_lease(sid, file_id)?;
        self.set_copy_props(sid, file_id, None)?;
        self.c
            .prepare_cached("DELETE FROM nodes WHERE sid = ?1 AND file_id = ?2")?
            .execute(params![sid, to_i64(file_id)])?;
        Ok(())
    }

    pub fn has_children(&self, sid: i64, dir: u64) -> StorageResult<bool> {
        Ok(self
            .c
            .prepare_cached("SELECT 1 FROM nodes WHERE sid = ?1 AND parent_id = ?2 LIMIT 1")?
            .query_row(params![sid, to_i64(dir)], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Children of `dir` whose name key starts with `prefix_key` and is at least `from_key`, in name-key
    /// order, at most `limit`. One range scan of `nodes_by_name`.
    pub fn children(
        &self,
        sid: i64,
        dir: u64,
        prefix_key: &str,
        from_key: &str,
        limit: usize,
    ) -> StorageResult<Vec<Node>> {
        let start = if from_key > prefix_key { from_key } else { prefix_key };
        let mut stmt;
        let rows = if prefix_key.is_empty() {
            let sql = format!(
                "SELECT {NODE_COLS} FROM nodes WHERE sid = ?1 AND parent_id = ?2 AND name_key >= ?3 ORDER BY name_key LIMIT ?4"
            );
            stmt = self.c.prepare_cached(&sql)?;
            stmt.query_map(params![sid, to_i64(dir), start, limit as i64], node_from_row)?
                .collect::<Result<Vec<_>, _>>()?
        } else {
            // Keys with the prefix sort below prefix + U+10FFFF: an upper bound for the index range scan,
            // so a page never scans past the matching names.
            let upper = format!("{prefix_key}\u{10FFFF}");
            let sql = format!(
                "SELECT {NODE_COLS} FROM nodes WHERE sid = ?1 AND parent_id = ?2 AND name_key >= ?3 AND name_key <= ?4 \
                 AND substr(name_key, 1, length(?5)) = ?5 ORDER BY name_key LIMIT ?6"
            );
            stmt = self.c.prepare_cached(&sql)?;
            stmt.query_map(params![sid, to_i64(dir), start, upper, prefix_key, limit as i64], node_from_row)?
                .collect::<Result<Vec<_>, _>>()?
        };
        Ok(rows)
    }

    // ---- content ----

    /// Extents of a file overlapping `[start, end)`, by position (not clipped).
    pub fn extents(&self, sid: i64, file_id: u64, start: i64, end: i64) -> StorageResult<Vec<Extent>> {
        let mut stmt = self.c.prepare_cached(EXTENTS_SQL)?;
        let rows = stmt.query_map(params![sid, to_i64(file_id), start.saturating_sub(MAX_EXTENT), end], |r| {
            Ok(Extent { pos: r.get(0)?, length: r.get(1)?, blob_id: r.get(2)?, blob_offset: r.get(3)? })
        })?;
        let mut out = Vec::new();
        for e in rows {
            let e = e?;
            if e.end() > start {
                out.push(e);
            }
        }
        Ok(out)
    }

    fn insert_extent(&self, sid: i64, file_id: u64, e: Extent) -> StorageResult<()> {
        self.c
            .prepare_cached(
                "INSERT INTO extents(sid, file_id, pos, length, blob_id, blob_offset) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![sid, to_i64(file_id), e.pos, e.length, e.blob_id, e.blob_offset])?;
        Ok(())
    }

    /// Makes `[start, end)` of a file unwritten (reads as zeros), keeping the parts of extents outside it.
    pub fn clear(&self, sid: i64, file_id: u64, start: i64, end: i64) -> StorageResult<()> {
        let hit = self.extents(sid, file_id, start, end)?;
        let mut del = self.c.prepare_cached("DELETE FROM extents WHERE sid = ?1 AND file_id = ?2 AND pos = ?3")?;
        for e in &hit {
            del.execute(params![sid, to_i64(file_id), e.pos])?;
            if e.pos < start {
                self.insert_extent(sid, file_id, Extent { length: start - e.pos, ..*e })?;
            }
            if e.end() > end {
                let cut = end - e.pos;
                self.insert_extent(
                    sid,
                    file_id,
                    Extent { pos: end, length: e.length - cut, blob_id: e.blob_id, blob_offset: e.blob_offset + cut },
                )?;
            }
        }
        let blobs: Vec<i64> = hit.iter().map(|e| e.blob_id).collect();
        self.collect_blobs(&blobs)
    }

    /// Writes `data` at `pos` (at most [`MAX_EXTENT`] bytes) as one new blob.
    pub fn write(&self, sid: i64, file_id: u64, pos: i64, data: &[u8]) -> StorageResult<()> {
        if data.is_empty() {
            return Ok(());
        }
        debug_assert!(data.len() as i64 <= MAX_EXTENT);
        self.clear(sid, file_id, pos, pos + data.len() as i64)?;
        self.c.prepare_cached("INSERT INTO blobs(data) VALUES (?1)")?.execute([data])?;
        let blob_id = self.c.last_insert_rowid();
        self.insert_extent(sid, file_id, Extent { pos, length: data.len() as i64, blob_id, blob_offset: 0 })
    }

    /// The bytes `[start, end)` of a file; unwritten ranges are zeros.
    pub fn read(&self, sid: i64, file_id: u64, start: i64, end: i64) -> StorageResult<Vec<u8>> {
        let mut out = vec![0u8; (end - start).max(0) as usize];
        for e in self.extents(sid, file_id, start, end)? {
            let from = e.pos.max(start);
            let to = e.end().min(end);
            let at = (from - start) as usize;
            // Incremental blob I/O reads only the pages of the part asked for.
            let blob = self.c.blob_open(rusqlite::MAIN_DB, c"blobs", c"data", e.blob_id, true)?;
            blob.read_at_exact(&mut out[at..at + (to - from) as usize], (e.blob_offset + (from - e.pos)) as usize)?;
        }
        Ok(out)
    }

    /// Deletes those of `blobs` that no extent references any more.
    fn collect_blobs(&self, blobs: &[i64]) -> StorageResult<()> {
        let mut stmt = self.c.prepare_cached(
            "DELETE FROM blobs WHERE blob_id = ?1 AND NOT EXISTS (SELECT 1 FROM extents WHERE blob_id = ?1)",
        )?;
        for b in blobs {
            stmt.execute([b])?;
        }
        Ok(())
    }

    /// Makes file `dst` of share version `dst_sid` hold the same bytes as `src` of `src_sid` (which must
    /// have no extents yet) by copying extent rows: blobs are immutable and shared, never copied.
    pub fn copy_extents(&self, src_sid: i64, src: u64, dst_sid: i64, dst: u64) -> StorageResult<()> {
        self.c
            .prepare_cached(
                "INSERT INTO extents(sid, file_id, pos, length, blob_id, blob_offset) \
                 SELECT ?3, ?4, pos, length, blob_id, blob_offset FROM extents WHERE sid = ?1 AND file_id = ?2",
            )?
            .execute(params![src_sid, to_i64(src), dst_sid, to_i64(dst)])?;
        Ok(())
    }

    /// Makes `[dst_pos, dst_pos + (src_end - src_start))` of file `dst` hold the bytes `[src_start,
    /// src_end)` of file `src` (the destination range must be unwritten): extent rows are clipped and
    /// shifted, blobs shared.
    #[allow(clippy::too_many_arguments)]
    pub fn copy_extent_range(
        &self,
        src_sid: i64,
        src: u64,
        src_start: i64,
        src_end: i64,
        dst_sid: i64,
        dst: u64,
        dst_pos: i64,
    ) -> StorageResult<()> {
        for e in self.extents(src_sid, src, src_start, src_end)? {
            let from = e.pos.max(src_start);
            let to = e.end().min(src_end);
            if from >= to {
                continue;
            }
            let clipped = Extent {
                pos: dst_pos + (from - src_start),
                length: to - from,
                blob_id: e.blob_id,
                blob_offset: e.blob_offset + (from - e.pos),
            };
            self.insert_extent(dst_sid, dst, clipped)?;
        }
        Ok(())
    }

    // ---- copy properties ----

    pub fn copy_props(&self, sid: i64, file_id: u64) -> StorageResult<Option<CopyProps>> {
        Ok(self
            .c
            .prepare_cached("SELECT copy_id, source, completed, bytes FROM copies WHERE sid = ?1 AND file_id = ?2")?
            .query_row(params![sid, to_i64(file_id)], |r| {
                Ok(CopyProps { id: r.get(0)?, source: r.get(1)?, completed: r.get(2)?, bytes: r.get(3)? })
            })
            .optional()?)
    }

    /// Records (or, with `None`, forgets) the copy properties of a file.
    pub fn set_copy_props(&self, sid: i64, file_id: u64, copy: Option<&CopyProps>) -> StorageResult<()> {
        match copy {
            None => {
                self.c
                    .prepare_cached("DELETE FROM copies WHERE sid = ?1 AND file_id = ?2")?
                    .execute(params![sid, to_i64(file_id)])?;
            }
            Some(c) => {
                self.c
                    .prepare_cached(
                        "INSERT OR REPLACE INTO copies(sid, file_id, copy_id, source, completed, bytes) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )?
                    .execute(params![sid, to_i64(file_id), c.id, c.source, c.completed, c.bytes])?;
            }
        }
        Ok(())
    }

    // ---- leases ----

    /// The lease on a file, if any (broken or not).
    pub fn lease(&self, sid: i64, file_id: u64) -> StorageResult<Option<Lease>> {
        Ok(self
            .c
            .prepare_cached("SELECT lease_id, broken FROM leases WHERE sid = ?1 AND file_id = ?2")?
            .query_row(params![sid, to_i64(file_id)], |r| Ok(Lease { id: r.get(0)?, broken: r.get(1)? }))
            .optional()?)
    }

    pub fn set_lease(&self, sid: i64, file_id: u64, lease: &Lease) -> StorageResult<()> {
        self.c
            .prepare_cached("INSERT OR REPLACE INTO leases(sid, file_id, lease_id, broken) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![sid, to_i64(file_id), lease.id, lease.broken])?;
        Ok(())
    }

    pub fn delete_lease(&self, sid: i64, file_id: u64) -> StorageResult<()> {
        self.c
            .prepare_cached("DELETE FROM leases WHERE sid = ?1 AND file_id = ?2")?
            .execute(params![sid, to_i64(file_id)])?;
        Ok(())
    }

    // ---- share leases ----

    /// The lease row of share version `sid`, if any (whatever its state now).
    pub fn share_lease(&self, sid: i64) -> StorageResult<Option<ShareLease>> {
        Ok(self
            .c
            .prepare_cached("SELECT lease_id, duration_secs, expires, broken_at FROM share_leases WHERE sid = ?1")?
            .query_row([sid], |r| {
                Ok(ShareLease { id: r.get(0)?, duration_secs: r.get(1)?, expires: r.get(2)?, broken_at: r.get(3)? })
            })
            .optional()?)
    }

    pub fn set_share_lease(&self, sid: i64, lease: &ShareLease) -> StorageResult<()> {
        self.c
            .prepare_cached(
                "INSERT OR REPLACE INTO share_leases(sid, lease_id, duration_secs, expires, broken_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![sid, lease.id, lease.duration_secs, lease.expires, lease.broken_at])?;
        Ok(())
    }

    pub fn delete_share_lease(&self, sid: i64) -> StorageResult<()> {
        self.c.prepare_cached("DELETE FROM share_leases WHERE sid = ?1")?.execute([sid])?;
        Ok(())
    }

    // ---- stored access policies ----

    /// The stored access policies of share `share`, in the order they were set.
    pub fn access_policies(&self, share: &str) -> StorageResult<Vec<AccessPolicy>> {
        let mut stmt = self.c.prepare_cached(
            "SELECT id, start, expiry, permission FROM access_policies WHERE share = ?1 ORDER BY pos",
        )?;
        let rows = stmt.query_map([share], |r| {
            Ok(AccessPolicy { id: r.get(0)?, start: r.get(1)?, expiry: r.get(2)?, permission: r.get(3)? })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Replaces the stored access policies of share `share`.
    pub fn set_access_policies(&self, share: &str, policies: &[AccessPolicy]) -> StorageResult<()> {
        self.c.prepare_cached("DELETE FROM access_policies WHERE share = ?1")?.execute([share])?;
        let mut insert = self.c.prepare_cached(
            "INSERT INTO access_policies(share, pos, id, start, expiry, permission) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for (pos, p) in policies.iter().enumerate() {
            insert.execute(params![share, pos as i64, p.id, p.start, p.expiry, p.permission])?;
        }
        Ok(())
    }

    // ---- permissions ----

    /// Stores `sddl` for `share` under `key` (idempotent).
    pub fn put_permission(&self, share: &str, key: &str, sddl: &str) -> StorageResult<()> {
        self.c
            .prepare_cached("INSERT OR IGNORE INTO permissions(share, key, sddl) VALUES (?1, ?2, ?3)")?
            .execute(params![share, key, sddl])?;
        Ok(())
    }

    pub fn permission(&self, share: &str, key: &str) -> StorageResult<Option<String>> {
        Ok(self
            .c
            .prepare_cached("SELECT sddl FROM permissions WHERE share = ?1 AND key = ?2")?
            .query_row(params![share, key], |r| r.get(0))
            .optional()?)
    }

    /// Forgets the permissions and stored access policies of a deleted share.
    pub fn delete_permissions(&self, share: &str) -> StorageResult<()> {
        self.c.prepare_cached("DELETE FROM permissions WHERE share = ?1")?.execute([share])?;
        self.c.prepare_cached("DELETE FROM access_policies WHERE share = ?1")?.execute([share])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(id: u64) -> Node {
        Node { file_id: id, parent_id: ROOT_FILE_ID, name: format!("f{id}"), ..Default::default() }
    }

    #[test]
    fn writes_clears_and_snapshots_share_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &[]).unwrap();
        store
            .run(true, |db| {
                let root = Node { file_id: ROOT_FILE_ID, is_dir: true, ..Default::default() };
                let s = db.create_share("s", 5120, &vec![], &ShareProps::default(), 1, &root)?;
                db.insert_node(s.sid, &file(7))?;
                db.write(s.sid, 7, 0, &[1u8; 100])?;
                db.write(s.sid, 7, 50, &[2u8; 10])?;
                let snap = db.create_snapshot(&s, "x")?;
                db.clear(s.sid, 7, 0, 55)?;
                let live = db.read(s.sid, 7, 0, 100)?;
                assert_eq!(&live[..55], &[0u8; 55][..]);
                assert_eq!(&live[55..60], &[2u8; 5][..]);
                assert_eq!(&live[60..], &[1u8; 40][..]);
                let frozen = db.read(snap.sid, 7, 0, 100)?;
                assert_eq!(&frozen[..50], &[1u8; 50][..]);
                assert_eq!(&frozen[50..60], &[2u8; 10][..]);
                assert_eq!(db.extents(s.sid, 7, 0, 100)?.len(), 2);
                db.delete_share(snap.sid)?;
                db.delete_node(s.sid, 7)?;
                let left: i64 = db.c.query_row("SELECT COUNT(*) FROM blobs", [], |r| r.get(0))?;
                assert_eq!(left, 0);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn a_version_1_database_gains_share_properties() {
        let dir = tempfile::tempdir().unwrap();
        {
            let c = Connection::open(dir.path().join("emulator.sqlite")).unwrap();
            c.execute_batch(
                "CREATE TABLE shares(sid INTEGER PRIMARY KEY, name TEXT NOT NULL, snapshot TEXT NOT NULL, \
                 quota INTEGER NOT NULL, metadata TEXT NOT NULL, last_modified INTEGER NOT NULL, \
                 next_file_id INTEGER NOT NULL, UNIQUE(name, snapshot)); \
                 INSERT INTO shares VALUES (1, 'old', '', 7, '[]', 1, 2); PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        let store = Store::open(dir.path(), &[]).unwrap();
        let share = store.run(false, |db| db.live_share("old")).unwrap();
        assert_eq!((share.quota, share.props), (7, ShareProps::default()));
    }

    #[test]
    fn range_queries_are_not_prepared_again_for_new_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &[]).unwrap();
        let check = |db: &Db| {
            for i in 0..20 {
                db.extents(1, 7, i * 1000, i * 1000 + 500)?;
            }
            let stmt = db.c.prepare_cached(EXTENTS_SQL)?;
            assert_eq!(stmt.get_status(rusqlite::StatementStatus::RePrepare), 0);
            Ok(())
        };
        store.run(true, check).unwrap();
        store.run(false, check).unwrap();
    }

    #[test]
    fn name_keys_fold_case_one_to_one() {
        assert_eq!(name_key("a.Txt"), name_key("A.TXT"));
        assert_eq!(name_key("straße"), "STRAßE");
    }
}
