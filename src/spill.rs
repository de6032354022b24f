//! Spill directories (`--spill-dir`), shared by every external sort (the scan's [`crate::index::sort`],
//! prune's [`crate::repository::keyset`]): the one error a user sees when a sorted run does not fit.

use std::path::Path;

/// The message of a failed write of a sorted run into `dir` (the directory the user gave): it names the
/// directory, the room the run needed (`run_bytes`), the error and what is free there, and says what to do.
pub fn no_room(dir: &Path, run_bytes: u64, e: &dyn std::fmt::Display) -> String {
    let free = free_bytes(dir).map_or_else(|| "unknown".to_string(), |b| format!("{b} bytes"));
    format!(
        "spill directory {}: writing a sorted run of at most {run_bytes} bytes failed ({e}); free there: {free}; give --spill-dir a directory with room or raise --memory",
        dir.display()
    )
}

/// Bytes available to this user on the filesystem holding `dir`.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs reads a NUL-terminated path and fills one plain struct we own.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}
