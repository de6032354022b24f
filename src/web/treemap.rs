//! The space map: a squarified treemap (Bruls, Huizing, van Wijk 2000) of a snapshot's directories by
//! bytes, rendered as SVG on the server.
//!
//! - [`squarify`] is the layout alone: areas proportional to the weights, inside the given box, no
//!   overlap, aspect ratios kept near 1.
//! - [`space_map`] reads only the directory map of the snapshot's summary (subtree totals of the top
//!   levels; never a file row) and, for colour, the same directories' totals in the previous snapshot
//!   (matched by node id, so a renamed directory keeps its history).
//!
//! Every rectangle is an `<a>` into the tree browser with a `<title>` holding the path and the exact
//! bytes. Names are escaped ([`super::chart::xml_escape`]).

use std::fmt::Write;

use super::chart::xml_escape;
use crate::index::dirmap::DirMap;
use crate::index::node::NodeId;
use crate::units;

/// An axis-aligned rectangle in SVG units: top-left corner, width and height.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl Rect {
    pub fn area(&self) -> f64 {
        self.w * self.h
    }
    /// The rectangle shrunk by `d` on every side (never below zero size).
    pub fn inset(&self, d: f64) -> Rect {
        let dx = d.min(self.w / 2.0);
        let dy = d.min(self.h / 2.0);
        Rect { x: self.x + dx, y: self.y + dy, w: self.w - 2.0 * dx, h: self.h - 2.0 * dy }
    }
}

/// Lays out `weights` (non-negative; any order) in `area`: one rectangle per weight, in the same order,
/// with area `weight / sum(weights) * area.area()`, together tiling `area` exactly. Zero weights get
/// zero-sized rectangles; all zero (or no weights) gives all zero-sized rectangles at the corner.
pub fn squarify(weights: &[f64], area: Rect) -> Vec<Rect> {
    let mut out = vec![Rect { x: area.x, y: area.y, w: 0.0, h: 0.0 }; weights.len()];
    let total: f64 = weights.iter().map(|w| w.max(0.0)).sum();
    if total <= 0.0 || area.area() <= 0.0 {
        return out;
    }
    // Largest first (the algorithm's precondition); areas in SVG units².
    let mut order: Vec<usize> = (0..weights.len()).filter(|&i| weights[i] > 0.0).collect();
    order.sort_by(|&a, &b| weights[b].total_cmp(&weights[a]));
    let scale = area.area() / total;
    let sizes: Vec<f64> = order.iter().map(|&i| weights[i] * scale).collect();
    let mut free = area;
    let mut start = 0;
    while start < sizes.len() {
        // Lay a row along the shorter side of the free space; grow it while the worst aspect improves.
        let side = free.w.min(free.h);
        let mut end = start + 1;
        let mut best = worst(&sizes[start..end], side);
        while end < sizes.len() {
            let next = worst(&sizes[start..=end], side);
            if next > best {
                break;
            }
            best = next;
            end += 1;
        }
        // The last row takes all the remaining space (no floating-point sliver is left over).
        let row_sum: f64 = if end == sizes.len() { free.area() } else { sizes[start..end].iter().sum() };
        let row_total: f64 = sizes[start..end].iter().sum();
        let thick = row_sum / side;
        let mut along = 0.0;
        for (k, &s) in sizes[start..end].iter().enumerate() {
            let len = if k + 1 == end - start { side - along } else { side * s / row_total };
            let r = if free.w >= free.h {
                // A column at the left of the free space.
                Rect { x: free.x, y: free.y + along, w: thick, h: len }
            } else {
                // A row at the top.
                Rect { x: free.x + along, y: free.y, w: len, h: thick }
            };
            out[order[start + k]] = r;
            along += len;
        }
        free = if free.w >= free.h {
            Rect { x: free.x + thick, y: free.y, w: (free.w - thick).max(0.0), h: free.h }
        } else {
            Rect { x: free.x, y: free.y + thick, w: free.w, h: (free.h - thick).max(0.0) }
        };
        start = end;
    }
    out
}

/// The worst aspect ratio (≥ 1) of a row of `sizes` laid along a side of length `side`.
fn worst(sizes: &[f64], side: f64) -> f64 {
    let sum: f64 = sizes.iter().sum();
    let (max, min) = sizes.iter().fold((0.0f64, f64::INFINITY), |(a, b), &s| (a.max(s), b.min(s)));
    let s2 = side * side;
    let sum2 = sum * sum;
    (s2 * max / sum2).max(sum2 / (s2 * min))
}

/// One rectangle of a space map.
#[derive(Debug, Clone)]
pub struct Tile {
    /// The directory's path (`/docs/a`); for a lumped tile, what it holds in words.
    pub path: String,
    /// Bytes of the subtree now.
    pub bytes: u64,
    /// Bytes of the same directory (by node id) in the previous snapshot; `None` when it did not exist
    /// then, when there is no previous snapshot, and for lumped tiles.
    pub before: Option<u64>,
    /// 1 for the directories of the map's root, 2 for theirs, …
    pub depth: usize,
    pub rect: Rect,
    /// Not one directory: the files directly in the parent, or the directories beyond [`MAX_CHILDREN`]
    /// lumped together (no link).
    pub lumped: bool,
}

/// At most this many directories per level get a rectangle; the rest of the level's bytes go to one
/// "other" tile so the areas still add up.
const MAX_CHILDREN: usize = 40;
/// A rectangle smaller than this (in SVG units on either side) is not subdivided further.
const MIN_SIDE: f64 = 18.0;
/// Room at the top of a subdivided rectangle for its name.
const LABEL_H: f64 = 14.0;

/// Lays out the subtree of directory `root` of `now` down to `levels` levels in `area`. `before` is the
/// previous snapshot's directory map (for growth), matched by node id.
pub fn layout(now: &DirMap, before: Option<&DirMap>, root: NodeId, levels: usize, area: Rect) -> Vec<Tile> {
    let mut tiles = Vec::new();
    let root_path = now.path(root).unwrap_or_else(|| "/".into());
    lay(now, before, root, &root_path, 1, levels, area, &mut tiles);
    tiles
}

#[allow(clippy::too_many_arguments)]
fn lay(
    now: &DirMap,
    before: Option<&DirMap>,
    dir: NodeId,
    dir_path: &str,
    depth: usize,
    levels: usize,
    area: Rect,
    out: &mut Vec<Tile>,
) {
    let total = now.du(dir).map_or(0, |t| t.bytes);
    let mut kids: Vec<(NodeId, std::borrow::Cow<str>, u64)> =
        now.subdirs(dir).map(|(_, id, name)| (id, name, now.du(id).map_or(0, |t| t.bytes))).collect();
    kids.sort_by(|a, b| b.2.cmp(&a.2).then(a.1.cmp(&b.1)));
    let shown = kids.len().min(MAX_CHILDREN);
    let in_kids: u64 = kids.iter().map(|k| k.2).sum();
    let other: u64 = kids[shown..].iter().map(|k| k.2).sum();
    let own = total.saturating_sub(in_kids);
    let mut weights: Vec<f64> = kids[..shown].iter().map(|k| k.2 as f64).collect();
    weights.push(other as f64);
    weights.push(own as f64);
    let rects = squarify(&weights, area);
    for (k, r) in kids[..shown].iter().zip(&rects) {
        if r.area() <= 0.0 {
            continue;
        }
        let path = if dir_path == "/" { format!("/{}", k.1) } else { format!("{dir_path}/{}", k.1) };
        let before_bytes = before.and_then(|b| b.du(k.0)).map(|t| t.bytes);
        out.push(Tile { path: path.clone(), bytes: k.2, before: before_bytes, depth, rect: *r, lumped: false });
        if depth < levels && r.w >= 2.0 * MIN_SIDE && r.h >= 2.0 * MIN_SIDE + LABEL_H {
            let inner = Rect { x: r.x + 2.0, y: r.y + LABEL_H, w: r.w - 4.0, h: r.h - LABEL_H - 2.0 };
            lay(now, before, k.0, &path, depth + 1, levels, inner, out);
        }
    }
    let n = rects.len();
    for (i, bytes) in [(n - 2, other), (n - 1, own)] {
        if rects[i].area() <= 0.0 {
            continue;
        }
        let path = if i == n - 2 {
            format!("{} other directories in {dir_path}", kids.len() - shown)
        } else {
            format!("files directly in {dir_path}")
        };
        out.push(Tile { path, bytes, before: None, depth, rect: rects[i], lumped: true });
    }
}

/// Colour of a tile by its growth since the previous snapshot: grey when unchanged or unknown, greens
/// for shrinking, oranges to reds for growing (the more, the darker), purple for new directories.
pub fn growth_colour(t: &Tile, has_before: bool) -> &'static str {
    if t.lumped || !has_before {
        return "#cbd5e1";
    }
    let Some(b) = t.before else { return "#c4b5fd" };
    if b == t.bytes {
        return "#cbd5e1";
    }
    let ratio = if b == 0 { f64::INFINITY } else { t.bytes as f64 / b as f64 };
    match ratio {
        r if r < 0.9 => "#86efac",
        r if r < 1.0 => "#bbf7d0",
        r if r < 1.05 => "#fed7aa",
        r if r < 1.25 => "#fdba74",
        _ => "#f87171",
    }
}

/// The legend of [`growth_colour`], in order.
pub const LEGEND: [(&str, &str); 7] = [
    ("#f87171", "grew 25% or more"),
    ("#fdba74", "grew 5–25%"),
    ("#fed7aa", "grew under 5%"),
    ("#cbd5e1", "unchanged, or files"),
    ("#bbf7d0", "shrank under 10%"),
    ("#86efac", "shrank 10% or more"),
    ("#c4b5fd", "new"),
];

/// The SVG of a space map: `tiles` from [`layout`] in a `w`×`h` box; `href(path)` gives each directory's
/// link into the tree browser (already URL-encoded, escaped here).
pub fn svg(tiles: &[Tile], w: f64, h: f64, has_before: bool, title: &str, href: &dyn Fn(&str) -> String) -> String {
    let mut s = String::with_capacity(256 * tiles.len() + 512);
    let _ = write!(
        s,
        r#"<svg class="space-map" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif">"#,
        xml_escape(title)
    );
    for (i, t) in tiles.iter().enumerate() {
        let r = t.rect;
        // Tiles come in pre-order: a subdivided tile's children directly follow it.
        let subdivided = tiles.get(i + 1).is_some_and(|next| next.depth > t.depth);
        let change = match (has_before, t.before, t.lumped) {
            (_, _, true) | (false, _, _) => String::new(),
            (true, None, false) => " · new since the previous snapshot".to_string(),
            (true, Some(b), false) => {
                format!(" · {} since the previous snapshot", units::bytes_delta(t.bytes as i64 - b as i64))
            }
        };
        let hover = format!("{} · {} bytes ({}){change}", t.path, units::count(t.bytes), units::bytes(t.bytes));
        let fill = growth_colour(t, has_before);
        let name = t.path.rsplit('/').next().unwrap_or("");
        let rect = format!(
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{fill}" stroke="#fff" stroke-width="1"><title>{}</title></rect>"##,
            r.x,
            r.y,
            r.w,
            r.h,
            xml_escape(&hover)
        );
        // A label where it fits: about 6 units per character at font size 10.
        let label = if !t.lumped && r.w >= 30.0 && r.h >= 13.0 {
            let fits = ((r.w - 6.0) / 6.0) as usize;
            let text: String = if name.chars().count() > fits {
                name.chars().take(fits.saturating_sub(1)).chain(std::iter::once('…')).collect()
            } else {
                name.to_string()
            };
            // The size under the name where a second line fits and no subdivision covers it.
            let size = if r.h >= 30.0 && !subdivided {
                format!(
                    r##"<text x="{:.1}" y="{:.1}" font-size="10" fill="#374151" pointer-events="none">{}</text>"##,
                    r.x + 3.0,
                    r.y + 23.0,
                    units::bytes(t.bytes)
                )
            } else {
                String::new()
            };
            format!(
                r##"<text x="{:.1}" y="{:.1}" font-size="10" fill="#111827" pointer-events="none">{}</text>{size}"##,
                r.x + 3.0,
                r.y + 11.0,
                xml_escape(&text)
            )
        } else {
            String::new()
        };
        if t.lumped {
            let _ = write!(s, r#"<g class="tile files" data-depth="{}">{rect}</g>"#, t.depth);
        } else {
            let _ = write!(
                s,
                r#"<a class="tile" data-depth="{}" data-bytes="{}" href="{}">{rect}{label}</a>"#,
                t.depth,
                t.bytes,
                xml_escape(&href(&t.path))
            );
        }
    }
    s.push_str("</svg>");
    s
}
