//! The dashboard's pure parts: the squarified treemap layout of the space map, the time axis of the
//! charts, the one formatting module for units (shared with the CLI) and the reading of job progress.

use afb::jobs::progress;
use afb::units;
use afb::web::chart::time_ticks;
use afb::web::treemap::{Rect, squarify};
use serde_json::json;

const EPS: f64 = 1e-6;

fn inside(r: &Rect, b: &Rect) -> bool {
    r.x >= b.x - EPS && r.y >= b.y - EPS && r.x + r.w <= b.x + b.w + EPS && r.y + r.h <= b.y + b.h + EPS
}

fn overlap(a: &Rect, b: &Rect) -> f64 {
    let w = (a.x + a.w).min(b.x + b.w) - a.x.max(b.x);
    let h = (a.y + a.h).min(b.y + b.h) - a.y.max(b.y);
    if w > 0.0 && h > 0.0 { w * h } else { 0.0 }
}

/// Areas proportional to the weights, every rectangle inside the box, no two overlapping, the box
/// covered exactly.
fn check_layout(weights: &[f64], b: Rect) {
    let rects = squarify(weights, b);
    assert_eq!(rects.len(), weights.len());
    let total: f64 = weights.iter().sum();
    let mut covered = 0.0;
    for (i, (r, w)) in rects.iter().zip(weights).enumerate() {
        let want = w / total * b.area();
        assert!((r.area() - want).abs() <= 1e-6 * b.area(), "rect {i}: area {} for weight {w}, want {want}", r.area());
        assert!(r.w >= 0.0 && r.h >= 0.0, "rect {i}: negative size {r:?}");
        assert!(inside(r, &b), "rect {i} {r:?} leaves the box {b:?}");
        covered += r.area();
        for (j, o) in rects.iter().enumerate().skip(i + 1) {
            assert!(overlap(r, o) <= 1e-6 * b.area(), "rects {i} {r:?} and {j} {o:?} overlap");
        }
    }
    assert!((covered - b.area()).abs() <= 1e-6 * b.area(), "covered {covered} of {}", b.area());
}

#[test]
fn treemap_areas_are_proportional_inside_the_box_and_do_not_overlap() {
    let b = Rect { x: 10.0, y: 20.0, w: 960.0, h: 540.0 };
    // The paper's example, a skewed real-looking set, equal weights, one weight, unsorted input.
    check_layout(&[6.0, 6.0, 4.0, 3.0, 2.0, 2.0, 1.0], b);
    check_layout(&[2_192_020_987.0, 412_061.0, 23_200.0, 4_126.0, 2_012.0, 1.0], b);
    check_layout(&[1.0; 37], b);
    check_layout(&[42.0], b);
    check_layout(&[1.0, 50.0, 3.0, 700.0, 20.0, 5.0, 9.0, 0.5], Rect { x: 0.0, y: 0.0, w: 100.0, h: 700.0 });
    // Pseudo-random weights spanning six orders of magnitude.
    let mut x: u64 = 12345;
    let weights: Vec<f64> = (0..200)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((x >> 33) % 1_000_000 + 1) as f64
        })
        .collect();
    check_layout(&weights, b);
}

#[test]
fn treemap_keeps_order_zero_weights_and_squareness() {
    let b = Rect { x: 0.0, y: 0.0, w: 600.0, h: 400.0 };
    let rects = squarify(&[0.0, 3.0, 0.0, 1.0], b);
    assert_eq!(rects[0].area(), 0.0);
    assert_eq!(rects[2].area(), 0.0);
    assert!((rects[1].area() - 180_000.0).abs() < 1e-6 && (rects[3].area() - 60_000.0).abs() < 1e-6, "{rects:?}");
    assert!(squarify(&[0.0, 0.0], b).iter().all(|r| r.area() == 0.0));
    assert!(squarify(&[], b).is_empty());
    // Squarified: 16 equal weights in a square box are 16 squares.
    for r in squarify(&[1.0; 16], Rect { x: 0.0, y: 0.0, w: 400.0, h: 400.0 }) {
        assert!((r.w / r.h - 1.0).abs() < 0.01, "{r:?} is not square");
    }
}

#[test]
fn units_are_formatted_one_way() {
    assert_eq!(units::bytes(0), "0 B");
    assert_eq!(units::bytes(1023), "1023 B");
    assert_eq!(units::bytes(1024), "1.0 KiB");
    assert_eq!(units::bytes(1536), "1.5 KiB");
    assert_eq!(units::bytes(1024 * 1024 - 1), "1.0 MiB", "never 1024.0 KiB");
    assert_eq!(units::bytes(21 * 1024 * 1024), "21.0 MiB");
    assert_eq!(units::bytes(3 * (1 << 30) / 2), "1.5 GiB");
    assert_eq!(units::bytes(u64::MAX), "16.0 EiB");
    assert_eq!(units::bytes_delta(2048), "+2.0 KiB");
    assert_eq!(units::bytes_delta(-200), "-200 B");
    assert_eq!(units::bytes_delta(0), "±0 B");
    assert_eq!(units::count(0), "0");
    assert_eq!(units::count(999), "999");
    assert_eq!(units::count(1000), "1,000");
    assert_eq!(units::count(1_234_567), "1,234,567");
    assert_eq!(units::count_delta(-1500), "-1,500");
    assert_eq!(units::byte_rate(12.3 * 1024.0 * 1024.0), "12.3 MiB/s");
    assert_eq!(units::count_rate(1234.4, "files"), "1,234 files/s");
    assert_eq!(units::count_rate(2.54, "files"), "2.5 files/s");
    assert_eq!(units::duration(0.85), "850 ms");
    assert_eq!(units::duration(12.34), "12.3 s");
    assert_eq!(units::duration(185.0), "3 min 05 s");
    assert_eq!(units::duration(3720.0), "1 h 02 min");
    assert_eq!(units::duration(2.0 * 86_400.0 + 3.0 * 3600.0), "2 d 03 h");
    assert_eq!(units::duration(-1.0), "–");
    assert_eq!(units::percent(0.456), "45%");
    assert_eq!(units::percent(1.7), "100%");
    // A size axis: a round top in the binary unit, labels in the top's unit.
    let gib = (1u64 << 30) as f64;
    assert_eq!(units::bytes_axis_max(2.3 * gib), 2.4 * gib);
    assert_eq!(units::bytes_axis_max(700.0 * 1024.0 * 1024.0), 800.0 * 1024.0 * 1024.0);
    assert_eq!(units::bytes_axis_max(0.0), 4.0);
    assert_eq!(units::bytes_in_unit_of(0.6 * gib, 2.4 * gib), "0.6 GiB");
    assert_eq!(units::bytes_in_unit_of(0.0, 2.4 * gib), "0 GiB");
    assert_eq!(units::bytes_in_unit_of(200.0 * 1024.0 * 1024.0, 800.0 * 1024.0 * 1024.0), "200 MiB");
}

/// `2026-12-05T10:00:00Z` and friends as seconds since the epoch.
fn at(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp()
}

#[test]
fn time_axis_ticks_suit_the_span() {
    // Seconds: time labels, the date under the first.
    let t = time_ticks(at("2026-12-05T10:00:01Z"), at("2026-12-05T10:00:09Z"));
    assert!(t.len() >= 3 && t.len() <= 7, "{t:?}");
    assert_eq!(t[0].date.as_deref(), Some("2026-12-05"));
    assert!(t.iter().all(|k| k.label.starts_with("10:00:")), "{t:?}");
    // Hours across midnight: the date again where it changes.
    let t = time_ticks(at("2026-12-05T20:00:00Z"), at("2026-12-06T08:00:00Z"));
    assert!(t.iter().any(|k| k.date.as_deref() == Some("2026-12-06")), "{t:?}");
    assert!(t.iter().all(|k| k.label.len() == 5 && k.label.ends_with(":00")), "{t:?}");
    // Days: ISO dates, one per day at midnight.
    let t = time_ticks(at("2026-12-01T06:00:00Z"), at("2026-12-05T06:00:00Z"));
    let labels: Vec<&str> = t.iter().map(|k| k.label.as_str()).collect();
    assert_eq!(labels, ["2026-12-02", "2026-12-03", "2026-12-04", "2026-12-05"]);
    // Months: the first of each shown month.
    let t = time_ticks(at("2026-01-15T00:00:00Z"), at("2026-06-20T00:00:00Z"));
    let labels: Vec<&str> = t.iter().map(|k| k.label.as_str()).collect();
    assert_eq!(labels, ["Feb 2026", "Mar 2026", "Apr 2026", "May 2026", "Jun 2026"]);
    // Years.
    let t = time_ticks(at("2019-03-01T00:00:00Z"), at("2026-03-01T00:00:00Z"));
    let labels: Vec<&str> = t.iter().map(|k| k.label.as_str()).collect();
    assert!(labels.len() >= 3 && labels.len() <= 7 && labels.iter().all(|l| l.len() == 4), "{labels:?}");
    assert!(labels.contains(&"2020") || labels.contains(&"2022"), "{labels:?}");
    // Every tick lies within the span, in order.
    for (a, b) in [("2026-12-05T10:00:00Z", "2026-12-05T10:37:00Z"), ("2021-06-01T00:00:00Z", "2026-11-01T00:00:00Z")] {
        let t = time_ticks(at(a), at(b));
        assert!(!t.is_empty() && t.len() <= 7, "{a}..{b}: {t:?}");
        assert!(t.windows(2).all(|w| w[0].t < w[1].t) && t.iter().all(|k| k.t >= at(a) && k.t <= at(b)), "{t:?}");
    }
    // One instant: one tick with its date.
    let t = time_ticks(at("2026-12-05T10:00:00Z"), at("2026-12-05T10:00:00Z"));
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].date.as_deref(), Some("2026-12-05"));
}

#[test]
fn job_progress_reads_as_bar_rate_and_time_left() {
    let s = 1_000_000_000_000_000i64; // µs
    // A backup reading: 25 of 100 MiB after 10 s of its 12 s job.
    let p = json!({"phase": "backup", "files": 40, "files_total": 200, "bytes": 25u64 << 20, "bytes_total": 100u64 << 20, "elapsed_ms": 10_000});
    let v = progress::view(Some(&p), false, Some(s), None, s + 12_000_000);
    assert_eq!(v.fraction, Some(0.25));
    assert_eq!(v.phase, "reading and storing changed files");
    assert_eq!(v.amounts(), "40 of 200 files · 25.0 MiB of 100.0 MiB");
    assert_eq!(v.timing(), "2.5 MiB/s · 4.0 files/s · 30.0 s left · 12.0 s elapsed");
    assert_eq!(v.text_bar(8), "[##......] 25%");
    // Listing: no total, so no bar value; counts and rate over the job's time.
    let p = json!({"phase": "listing", "directories": 10, "files": 500, "bytes": 1000});
    let v = progress::view(Some(&p), false, Some(s), None, s + 5_000_000);
    assert_eq!(v.fraction, None);
    assert_eq!(v.eta_secs, None);
    assert_eq!(v.amounts(), "500 files · 10 directories · 1000 B");
    assert!(v.timing().contains("100 files/s"), "{}", v.timing());
    assert_eq!(v.text_bar(4), "[????]");
    // Done: duration, throughput and the outcome.
    let p = json!({"phase": "done", "snapshot_id": "s1", "files_new": 30, "files_changed": 10, "files_unchanged": 5, "bytes_read": 8u64 << 20, "bytes_uploaded": 4u64 << 20});
    let v = progress::view(Some(&p), true, Some(s), Some(s + 4_000_000), s + 60_000_000);
    assert_eq!(v.fraction, Some(1.0));
    assert_eq!(v.timing(), "took 4.0 s · 2.0 MiB/s · 10 files/s");
    assert_eq!(v.outcome, "snapshot s1: 30 new, 10 changed, 5 unchanged files; read 8.0 MiB, stored 4.0 MiB");
    // Nothing reported yet.
    let v = progress::view(None, false, None, None, s);
    assert_eq!((v.fraction, v.amounts(), v.timing()), (None, String::new(), String::new()));
}

#[test]
fn afb_jobs_show_prints_the_same_reading_of_progress() {
    let s = 1_700_000_000_000_000i64;
    let mut j = afb::jobs::JobRecord {
        job_id: 7,
        tenant_id: 3,
        share_id: None,
        kind: afb::jobs::JobKind::Backup,
        state: afb::jobs::JobState::Running,
        priority: 0,
        attempts: 1,
        max_attempts: 5,
        last_error: None,
        parent_id: None,
        pending_children: 0,
        cancel_requested: false,
        progress: Some(json!({"phase": "backup", "files": 1, "files_total": 4, "bytes": 1024, "bytes_total": 4096})),
        started_us: Some(s),
        finished_us: None,
    };
    let out = afb::jobs::cli::show_line(&j);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "job 7 backup tenant 3 running attempts 1/5");
    assert!(
        lines[1].starts_with(
            "  [#####...............] 25%  reading and storing changed files  1 of 4 files · 1.0 KiB of 4.0 KiB"
        ),
        "{out}"
    );
    assert!(lines[1].contains(" elapsed"), "{out}");
    j.state = afb::jobs::JobState::Dead;
    j.finished_us = Some(s + 2_000_000);
    j.last_error = Some("share gone".into());
    let out = afb::jobs::cli::show_line(&j);
    assert!(out.contains("took 2.0 s") && out.ends_with("\n  last error: share gone"), "{out}");
}

/// `afb jobs list` and `afb jobs show` against PostgreSQL: a running backup's bar, phase, amounts and
/// elapsed time from the queue's `started_at`; a finished one's duration.
#[tokio::test]
async fn afb_jobs_list_and_show_read_progress_from_postgres() {
    use afb::jobs::Queue;
    let db = crate::support::jobs::TestDb::new().await;
    let q = db.queue().await;
    let ids = q
        .enqueue(&[
            afb::jobs::NewJob::new(5, afb::jobs::JobKind::Backup, json!({})),
            afb::jobs::NewJob::new(5, afb::jobs::JobKind::Verify, json!({})),
        ])
        .await
        .unwrap();
    let c = db.client().await;
    let running = json!({"phase": "backup", "files": 30, "files_total": 40, "bytes": 3 << 20, "bytes_total": 4 << 20, "elapsed_ms": 3000});
    c.execute(
        "UPDATE jobs SET state = 'running', attempts = 1, started_at = now() - interval '4 seconds', progress = $2 WHERE job_id = $1",
        &[&ids[0], &running],
    )
    .await
    .unwrap();
    let done =
        json!({"phase": "done", "snapshot_id": "s9", "objects_checked": 12, "chunks_checked": 40, "problems": 0});
    c.execute(
        "UPDATE jobs SET state = 'succeeded', attempts = 1, started_at = now() - interval '10 seconds',
                finished_at = now() - interval '7 seconds', progress = $2 WHERE job_id = $1",
        &[&ids[1], &done],
    )
    .await
    .unwrap();
    let url = db.url.clone();
    let first = ids[0].to_string();
    let (list, show) = tokio::task::spawn_blocking(move || {
        let run = |args: &[&str]| {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_afb")).args(args).output().unwrap();
            assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).unwrap()
        };
        (run(&["jobs", "list", "--database-url", &url]), run(&["jobs", "show", &first, "--database-url", &url]))
    })
    .await
    .unwrap();
    assert!(show.starts_with(&format!("job {} backup tenant 5 running attempts 1/5\n", ids[0])), "{show}");
    assert!(
        show.contains("[###############.....] 75%  reading and storing changed files  30 of 40 files · 3.0 MiB of 4.0 MiB  1.0 MiB/s · 10 files/s · 1.0 s left · 4."),
        "{show}"
    );
    assert!(show.trim_end().ends_with("s elapsed"), "{show}");
    // Newest first: the verify, then the backup.
    let verify = list.find(&format!("job {} verify", ids[1])).expect("the verify is listed");
    let backup = list.find(&format!("job {} backup", ids[0])).expect("the backup is listed");
    assert!(verify < backup, "{list}");
    assert!(list.contains("took 3.0 s"), "{list}");
    assert!(list.contains("snapshot s9: 12 objects and 40 chunks checked, 0 problems"), "{list}");
}

/// A directory map of `nodes` (as a snapshot would give it).
async fn dir_map(nodes: &[afb::index::node::Node]) -> afb::index::dirmap::DirMap {
    let batch = afb::index::node::nodes_to_batch(nodes);
    let stream: afb::index::BatchStream = Box::pin(futures::stream::iter([Ok(batch)]));
    afb::index::dirmap::DirMap::build(stream).await.unwrap()
}

fn node(id: i64, parent: i64, name: &str, dir: bool, size: i64) -> afb::index::node::Node {
    use afb::index::node::{Node, NodeId, NodeKind};
    Node {
        node_id: NodeId(id),
        parent_id: NodeId(parent),
        name: name.into(),
        kind: if dir { NodeKind::Dir } else { NodeKind::File },
        size,
        mtime: 0,
        ctime: 0,
        attributes: 0,
        xorhash: id,
    }
}

/// The nested layout: top directories by subtree bytes (files directly in the root as one more tile),
/// second-level tiles inside their parent's rectangle, growth matched by node id.
#[tokio::test]
async fn space_map_layout_nests_directories_by_subtree_bytes() {
    use afb::web::treemap::layout;
    let now = dir_map(&[
        node(1, 0, "big", true, 0),
        node(2, 0, "small", true, 0),
        node(3, 1, "a", true, 0),
        node(4, 1, "b", true, 0),
        node(5, 3, "f1", false, 6000),
        node(6, 4, "f2", false, 2000),
        node(7, 1, "f3", false, 1000),
        node(8, 2, "f4", false, 1000),
        node(9, 0, "f5", false, 2000),
    ])
    .await;
    let before = dir_map(&[node(1, 0, "big", true, 0), node(3, 1, "a", true, 0), node(5, 3, "f1", false, 3000)]).await;
    let b = Rect { x: 0.0, y: 0.0, w: 960.0, h: 540.0 };
    let tiles = layout(&now, Some(&before), afb::index::node::ROOT_ID, 2, b);
    let top: Vec<_> = tiles.iter().filter(|t| t.depth == 1).collect();
    let find = |p: &str| tiles.iter().find(|t| t.path == p).unwrap_or_else(|| panic!("no tile {p}: {tiles:?}"));
    // 12,000 bytes in all: big 9,000, small 1,000, the root's own file 2,000.
    assert_eq!(top.len(), 3, "{top:?}");
    for (p, bytes) in [("/big", 9000u64), ("/small", 1000), ("files directly in /", 2000)] {
        let t = find(p);
        assert_eq!(t.bytes, bytes);
        assert!((t.rect.area() - bytes as f64 / 12_000.0 * b.area()).abs() < 1e-6 * b.area(), "{t:?}");
    }
    assert_eq!((find("/big").before, find("/small").before), (Some(3000), None), "growth by node id");
    let big = find("/big").rect;
    for p in ["/big/a", "/big/b", "files directly in /big"] {
        let t = find(p);
        assert_eq!(t.depth, 2);
        assert!(inside(&t.rect, &big), "{p} {:?} outside /big {big:?}", t.rect);
    }
    assert!(overlap(&find("/big/a").rect, &find("/big/b").rect) == 0.0);
    assert!(find("/big/a").rect.area() > 2.9 * find("/big/b").rect.area(), "6,000 against 2,000 bytes");
    // One level: no second-level tiles.
    assert!(layout(&now, None, afb::index::node::ROOT_ID, 1, b).iter().all(|t| t.depth == 1));
}
