//! Local restore writes confined below a root directory.
//!
//! The root is the operator's (or the API's per-tenant) directory and is opened once, following symlinks
//! in its own path. Everything below it is opened one component at a time relative to its parent
//! directory's descriptor (`openat`/`mkdirat`/`renameat`) with `O_NOFOLLOW`, so a symlink anywhere below
//! the root is refused, never followed, and nothing is written outside the root whatever the names in a
//! backup say. Every component is also checked with [`crate::azure::check_entry_name`] (no `..`, `/`,
//! empty or control characters) before anything is opened.
//!
//! An existing entry is inspected with `fstatat(AT_SYMLINK_NOFOLLOW)`: only a regular file is ever opened
//! for reading (to hash it in [`HASH_BUFFER_BYTES`] pieces); anything else (directory, symlink, fifo,
//! device, socket) is reported as a conflict. Files are written to a temporary name in the same directory
//! (created with `O_EXCL`) and renamed into place, so a restored file is complete or absent.
//!
//! The last [`OPEN_DIRS`] directories opened stay open: a directory is opened relative to its parent's
//! descriptor (opened the same way, from the cache or the root), so a restore of files grouped by
//! directory costs one `openat` per directory, not one per path component per file. A descriptor stays
//! valid for the directory it was opened on even if that directory is renamed meanwhile; it can only
//! ever refer to a directory reached below the root without following a symlink.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, bail};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::azure::check_entry_name;
use crate::hash::QuickXorHash;

/// Bytes read at a time when hashing an existing file.
pub const HASH_BUFFER_BYTES: usize = 1024 * 1024;

/// Directories kept open by a [`ConfinedRoot`] (one descriptor each), the most recently used.
pub const OPEN_DIRS: usize = 256;

/// A write refused because it would not stay below the root: a bad name, or a symlink or
/// non-directory in the way. One line naming the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// The components of `path` (below the root, `/`-separated), each checked with
/// [`check_entry_name`]; a [`Refused`] error names the path and the refused component.
pub fn checked_components(path: &str) -> anyhow::Result<Vec<&str>> {
    path.split('/')
        .map(|c| match check_entry_name(c) {
            Ok(()) => Ok(c),
            Err(why) => Err(Refused(format!(
                "refusing path \"{}\": component \"{}\": {why}",
                path.escape_debug(),
                c.escape_debug()
            ))
            .into()),
        })
        .collect()
}

/// What is at a path below the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    Nothing,
    /// A regular file of this many bytes.
    File(u64),
    /// Something that is not a regular file: a directory, symlink, fifo, device or socket.
    Other(&'static str),
}

/// A root directory every write is confined below.
pub struct ConfinedRoot {
    root: PathBuf,
    /// The root itself (`path` `""`), opened once.
    root_dir: Arc<ConfinedDir>,
    /// The last [`OPEN_DIRS`] directories opened below the root, by path (never `""`).
    open_dirs: Mutex<hashlink::LruCache<String, Arc<ConfinedDir>>>,
}

/// A directory below the root, opened without following symlinks; `path` is relative to the root.
pub struct ConfinedDir {
    fd: OwnedFd,
    path: String,
}

/// A file being written under a temporary name; [`ConfinedDir::commit`] renames it into place.
pub struct PendingFile {
    pub file: File,
    tmp: String,
    name: String,
}

fn kind_of(mode: rustix::fs::RawMode) -> Option<&'static str> {
    match FileType::from_raw_mode(mode) {
        FileType::RegularFile => None,
        FileType::Directory => Some("a directory"),
        FileType::Symlink => Some("a symbolic link"),
        FileType::Fifo => Some("a fifo"),
        FileType::CharacterDevice => Some("a character device"),
        FileType::BlockDevice => Some("a block device"),
        FileType::Socket => Some("a socket"),
        FileType::Unknown => Some("of unknown type"),
    }
}

impl ConfinedRoot {
    /// Creates `root` if needed and opens it.
    pub fn open(root: &Path) -> anyhow::Result<ConfinedRoot> {
        std::fs::create_dir_all(root).with_context(|| format!("creating restore root {}", root.display()))?;
        let fd = rustix::fs::open(root, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(std::io::Error::from)
            .with_context(|| format!("opening restore root {}", root.display()))?;
        Ok(ConfinedRoot {
            root: root.to_path_buf(),
            root_dir: Arc::new(ConfinedDir { fd, path: String::new() }),
            open_dirs: Mutex::new(hashlink::LruCache::new(OPEN_DIRS)),
        })
    }

    /// `path` below the root, for messages.
    pub fn display(&self, path: &str) -> String {
        self.root.join(path).display().to_string()
    }

    /// Opens the directory `path` (below the root; `""` is the root), creating missing components when
    /// `create`. A component that is a symlink or not a directory is an error naming it. The directory
    /// and its parents are taken from (and kept in) the open-directory cache.
    pub fn dir(&self, path: &str, create: bool) -> anyhow::Result<Arc<ConfinedDir>> {
        if path.is_empty() {
            return Ok(self.root_dir.clone());
        }
        // Only checked paths enter the cache, so a hit needs no check.
        if let Some(d) = self.open_dirs.lock().expect("open directories").get(path) {
            return Ok(d.clone());
        }
        checked_components(path)?;
        // The parent from the cache (or opened the same way), then this one component below it.
        let (parent_path, name) = path.rsplit_once('/').unwrap_or(("", path));
        let parent = self.dir(parent_path, create)?;
        let parent = &parent.fd;
        if create {
            match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o777)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => {
                    return Err(std::io::Error::from(e)).with_context(|| format!("creating {}", self.display(path)));
                }
            }
        }
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = match rustix::fs::openat(parent, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::LOOP | Errno::NOTDIR) => {
                let what = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
                    .ok()
                    .and_then(|st| kind_of(st.st_mode))
                    .unwrap_or("not a directory");
                return Err(Refused(format!(
                    "refusing to restore through {}: it is {what}, not a directory (symlinks below the restore root are never followed)",
                    self.display(path)
                ))
                .into());
            }
            Err(e) => return Err(std::io::Error::from(e)).with_context(|| format!("opening {}", self.display(path))),
        };
        let dir = Arc::new(ConfinedDir { fd, path: path.to_string() });
        self.open_dirs.lock().expect("open directories").insert(path.to_string(), dir.clone());
        Ok(dir)
    }
}

impl ConfinedDir {
    fn display(&self, name: &str) -> String {
        if self.path.is_empty() { name.to_string() } else { format!("{}/{name}", self.path) }
    }

    /// What is at `name` in this directory, without following a symlink.
    pub fn existing(&self, name: &str) -> anyhow::Result<Existing> {
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(match kind_of(st.st_mode) {
                None => Existing::File(st.st_size as u64),
                Some(what) => Existing::Other(what),
            }),
            Err(Errno::NOENT) => Ok(Existing::Nothing),
            Err(e) => Err(std::io::Error::from(e)).with_context(|| format!("inspecting {}", self.display(name))),
        }
    }

    /// The QuickXorHash and size of the regular file `name`, read [`HASH_BUFFER_BYTES`] at a time.
    /// Anything that is not a regular file (checked again on the opened descriptor) is an error.
    pub fn hash_file(&self, name: &str) -> anyhow::Result<([u8; 20], u64)> {
        // O_NONBLOCK: a fifo swapped in meanwhile must not block the open; it is refused below.
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, name, flags, Mode::empty())
            .map_err(std::io::Error::from)
            .with_context(|| format!("opening {}", self.display(name)))?;
        let st = rustix::fs::fstat(&fd).map_err(std::io::Error::from)?;
        if let Some(what) = kind_of(st.st_mode) {
            bail!("{} is {what}, not a regular file", self.display(name));
        }
        let mut file = File::from(fd);
        let mut hasher = QuickXorHash::new();
        let mut buf = vec![0u8; HASH_BUFFER_BYTES];
        let mut size = 0u64;
        loop {
            let n = file.read(&mut buf).with_context(|| format!("reading {}", self.display(name)))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            size += n as u64;
        }
        Ok((hasher.digest(), size))
    }

    /// Starts writing `name`: a new temporary file `.{name}.afb-restore` beside it, created with `O_EXCL |
    /// O_NOFOLLOW` (a leftover one from an interrupted restore is removed first).
    pub fn create_pending(&self, name: &str) -> anyhow::Result<PendingFile> {
        let tmp = format!(".{name}.afb-restore");
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let create = || rustix::fs::openat(&self.fd, tmp.as_str(), flags, Mode::from_raw_mode(0o666));
        let fd = match create() {
            Err(Errno::EXIST) => match rustix::fs::unlinkat(&self.fd, tmp.as_str(), AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => create(),
                Err(e) => {
                    return Err(std::io::Error::from(e)).with_context(|| format!("removing {}", self.display(&tmp)));
                }
            },
            other => other,
        }
        .map_err(std::io::Error::from)
        .with_context(|| format!("creating {}", self.display(&tmp)))?;
        Ok(PendingFile { file: File::from(fd), tmp, name: name.to_string() })
    }

    /// Writes `data` to a pending file.
    pub fn write(&self, pending: &mut PendingFile, data: &[u8]) -> anyhow::Result<()> {
        pending.file.write_all(data).with_context(|| format!("writing {}", self.display(&pending.tmp)))
    }

    /// Renames a completely written pending file into place, with `mtime` as its modification time.
    pub fn commit(&self, pending: PendingFile, mtime: Option<std::time::SystemTime>) -> anyhow::Result<()> {
        if let Some(t) = mtime {
            pending
                .file
                .set_modified(t)
                .with_context(|| format!("setting the time of {}", self.display(&pending.tmp)))?;
        }
        drop(pending.file);
        rustix::fs::renameat(&self.fd, pending.tmp.as_str(), &self.fd, pending.name.as_str())
            .map_err(std::io::Error::from)
            .with_context(|| format!("renaming {} to {}", self.display(&pending.tmp), self.display(&pending.name)))
    }

    /// Removes a pending file that will not be completed.
    pub fn abandon(&self, pending: PendingFile) {
        drop(pending.file);
        let _ = rustix::fs::unlinkat(&self.fd, pending.tmp.as_str(), AtFlags::empty());
    }
}
