//! What a job's progress means, for people: the one reader of the progress JSON the handlers of
//! [`super::data`] report (the API returns that JSON unchanged; the dashboard and `afb jobs show` show
//! this view of it).
//!
//! Keys read (all optional; handlers report what they know):
//! - `phase`: a word or two, see [`phase_words`];
//! - `files`, `bytes`: done so far (backup: files and bytes read; listing: entries found; restore: written);
//! - `files_total`, `bytes_total`: what the backup will read (known once it has planned);
//! - `directories`: directories listed so far (scans);
//! - `elapsed_ms`: milliseconds since the reported phase began (backup reading), for its rate;
//! - when done: `bytes_read` (backup) or `bytes` (restore), `files_new` + `files_changed` (backup).
//!
//! Timing comes from the queue: when the job was first claimed and when it ended (µs since the epoch).

use serde_json::Value;

use crate::units;

/// A job's progress for people, computed once per read.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressView {
    /// The phase in words (`reading files`), empty when the handler reported none.
    pub phase: String,
    /// Done of the total, 0..=1, when a total is known; `None`: indeterminate.
    pub fraction: Option<f64>,
    pub files: Option<u64>,
    pub files_total: Option<u64>,
    /// Directories listed so far (scans).
    pub directories: Option<u64>,
    pub bytes: Option<u64>,
    pub bytes_total: Option<u64>,
    /// Seconds since the job started (while it runs), or its whole run time (once it ended).
    pub elapsed_secs: Option<f64>,
    /// Bytes and files per second over the reported phase (or the whole job once it ended).
    pub bytes_per_sec: Option<f64>,
    pub files_per_sec: Option<f64>,
    /// Seconds left at the current byte rate (files when no byte total is known).
    pub eta_secs: Option<f64>,
    /// The job has ended (succeeded, dead or cancelled).
    pub ended: bool,
    /// What a finished phase reported, in words (`snapshot …: 12 new, 3 changed files; read 4.0 MiB`);
    /// empty while nothing has finished.
    pub outcome: String,
}

/// The phase a handler reports, in words.
pub fn phase_words(phase: &str) -> String {
    match phase {
        "snapshot" => "taking a share snapshot",
        "listing" => "listing directories",
        "listed" => "listed its part of the share",
        "committing index" => "committing the index snapshot",
        "indexed" => "index snapshot committed",
        "planning backup" => "planning the backup",
        "backup" => "reading and storing changed files",
        "split" => "split into parts for several workers",
        "committing backup" => "committing the backup",
        "restoring" => "restoring files",
        "verifying" => "verifying the backup",
        "pruning" => "freeing unreferenced data",
        "compacting chunk index" => "compacting the chunk index",
        "collecting node-index garbage" => "removing unreferenced index files",
        "done" => "done",
        other => other,
    }
    .to_string()
}

fn u64_of(v: &Value, k: &str) -> Option<u64> {
    v.get(k).and_then(Value::as_u64)
}

/// Reads `progress` (whatever the handler last reported) with the job's times: `started_us` (first
/// claim), `finished_us` (end) and `now_us`, all µs since the epoch.
pub fn view(
    progress: Option<&Value>,
    ended: bool,
    started_us: Option<i64>,
    finished_us: Option<i64>,
    now_us: i64,
) -> ProgressView {
    let empty = Value::Null;
    let p = progress.unwrap_or(&empty);
    let phase = p.get("phase").and_then(Value::as_str).map(phase_words).unwrap_or_default();
    let done = p.get("phase").and_then(Value::as_str) == Some("done");
    // What was processed: while running, `files`/`bytes`; a finished backup reports what it read.
    let files = match (u64_of(p, "files_new"), u64_of(p, "files_changed")) {
        (Some(a), Some(b)) if done => Some(a + b),
        _ => u64_of(p, "files"),
    };
    let bytes = if done { u64_of(p, "bytes_read").or_else(|| u64_of(p, "bytes")) } else { u64_of(p, "bytes") };
    let (files_total, bytes_total) =
        if done { (None, None) } else { (u64_of(p, "files_total"), u64_of(p, "bytes_total")) };
    let end_us = if ended { finished_us.unwrap_or(now_us) } else { now_us };
    let elapsed_secs = started_us.map(|s| (end_us - s).max(0) as f64 / 1e6);
    // The rate over the reported phase when it says how long it has run, else over the whole job.
    let rate_secs =
        if ended { elapsed_secs } else { u64_of(p, "elapsed_ms").map(|ms| ms as f64 / 1000.0).or(elapsed_secs) };
    let per_sec = |n: Option<u64>| match (n, rate_secs) {
        (Some(n), Some(s)) if s > 0.0 => Some(n as f64 / s),
        _ => None,
    };
    let bytes_per_sec = per_sec(bytes);
    let files_per_sec = per_sec(files);
    let frac = |done: Option<u64>, total: Option<u64>| match (done, total) {
        (Some(d), Some(t)) if t > 0 => Some((d as f64 / t as f64).clamp(0.0, 1.0)),
        (Some(_), Some(0)) => Some(1.0),
        _ => None,
    };
    // Bytes decide the fraction when there are any to read; a backup of empty files counts files.
    let fraction = match bytes_total {
        Some(t) if t > 0 => frac(bytes, bytes_total),
        _ => frac(files, files_total).or(frac(bytes, bytes_total)),
    };
    let eta_secs = if ended {
        None
    } else {
        match (bytes, bytes_total, bytes_per_sec, files, files_total, files_per_sec) {
            (Some(b), Some(bt), Some(r), ..) if bt > 0 && r > 0.0 => Some(bt.saturating_sub(b) as f64 / r),
            (.., Some(f), Some(ft), Some(r)) if r > 0.0 => Some(ft.saturating_sub(f) as f64 / r),
            _ => None,
        }
    };
    ProgressView {
        phase,
        fraction: if ended && done { Some(1.0) } else { fraction },
        files,
        files_total,
        directories: u64_of(p, "directories"),
        bytes,
        bytes_total,
        elapsed_secs,
        bytes_per_sec,
        files_per_sec,
        eta_secs,
        ended,
        outcome: outcome(p),
    }
}

/// The result a handler reported at the end of a phase (`phase` `done` or `indexed`), in words.
fn outcome(p: &Value) -> String {
    let n = |k: &str| u64_of(p, k).map(units::count).unwrap_or_else(|| "?".into());
    let b = |k: &str| u64_of(p, k).map(units::bytes).unwrap_or_else(|| "?".into());
    let snapshot = p.get("snapshot_id").and_then(Value::as_str).map(|s| format!("snapshot {s}: ")).unwrap_or_default();
    match p.get("phase").and_then(Value::as_str) {
        Some("indexed") => format!(
            "index snapshot {}: {} files, {} directories, {}",
            n("index_snapshot"),
            n("files"),
            n("directories"),
            b("bytes")
        ),
        Some("done") if p.get("files_new").is_some() => format!(
            "{snapshot}{} new, {} changed, {} unchanged files; read {}, stored {}",
            n("files_new"),
            n("files_changed"),
            n("files_unchanged"),
            b("bytes_read"),
            b("bytes_uploaded")
        ),
        Some("done") if p.get("objects_checked").is_some() => format!(
            "{snapshot}{} objects and {} chunks checked, {} problems",
            n("objects_checked"),
            n("chunks_checked"),
            n("problems")
        ),
        Some("done") if p.get("files_already_present").is_some() => format!(
            "{snapshot}{} files restored ({}), {} already present",
            n("files"),
            b("bytes"),
            n("files_already_present")
        ),
        _ => String::new(),
    }
}

impl ProgressView {
    /// What was done: `1,200 of 4,000 files · 12.0 MiB of 40.0 MiB` (totals only when known; a scan's
    /// directories too).
    pub fn amounts(&self) -> String {
        let mut parts = Vec::new();
        if let Some(f) = self.files {
            parts.push(match self.files_total {
                Some(t) => format!("{} of {} files", units::count(f), units::count(t)),
                None => format!("{} files", units::count(f)),
            });
        }
        if let Some(d) = self.directories {
            parts.push(format!("{} directories", units::count(d)));
        }
        if let Some(b) = self.bytes {
            parts.push(match self.bytes_total {
                Some(t) => format!("{} of {}", units::bytes(b), units::bytes(t)),
                None => units::bytes(b),
            });
        }
        parts.join(" · ")
    }

    /// Rates, and while running the time left and elapsed: `3.2 MiB/s · 45 files/s · 8.0 s left · 12.0 s
    /// elapsed`; once ended: `took 12.0 s · 3.2 MiB/s · 45 files/s`.
    pub fn timing(&self) -> String {
        let mut parts = Vec::new();
        if self.ended
            && let Some(e) = self.elapsed_secs
        {
            parts.push(format!("took {}", units::duration(e)));
        }
        if let Some(r) = self.bytes_per_sec {
            parts.push(units::byte_rate(r));
        }
        if let Some(r) = self.files_per_sec {
            parts.push(units::count_rate(r, "files"));
        }
        if !self.ended {
            if let Some(e) = self.eta_secs {
                parts.push(format!("{} left", units::duration(e)));
            }
            if let Some(e) = self.elapsed_secs {
                parts.push(format!("{} elapsed", units::duration(e)));
            }
        }
        parts.join(" · ")
    }

    /// A text bar `width` characters wide between brackets, with the percentage (`[#####.....] 50%`);
    /// for an unknown total, `[  ?  ]`-style: the bar is dots and no percentage.
    pub fn text_bar(&self, width: usize) -> String {
        match self.fraction {
            Some(f) => {
                let full = ((f * width as f64).floor() as usize).min(width);
                format!("[{}{}] {}", "#".repeat(full), ".".repeat(width - full), units::percent(f))
            }
            None => format!("[{}]", "?".repeat(width)),
        }
    }

    /// One line for a terminal: bar, phase, amounts, timing.
    pub fn line(&self) -> String {
        let mut parts = vec![self.text_bar(20)];
        for s in [&self.phase, &self.amounts(), &self.timing()] {
            if !s.is_empty() {
                parts.push(s.clone());
            }
        }
        parts.join("  ")
    }
}
