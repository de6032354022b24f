//! The crate's module graph has no cycles: among the children of every module (the top-level modules
//! of `src/lib.rs`, the files of `src/index/`, …), the "refers to" relation read from `crate::` and
//! `super::` paths is acyclic. A new cycle fails this test with the modules that form it.
//!
//! Code after a file's first `#[cfg(test)]` (its unit tests) is not counted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type ModPath = Vec<String>;

/// Every module file of the library: its module path (`src/index/dirmap.rs` → `index::dirmap`) and text.
fn modules(src: &Path) -> BTreeMap<ModPath, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") {
                continue;
            }
            let rel = p.strip_prefix(src).unwrap().with_extension("");
            let mut path: ModPath = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
            match path.last().map(String::as_str) {
                Some("main") if path.len() == 1 => continue,
                Some("lib") if path.len() == 1 => path.clear(),
                Some("mod") => {
                    path.pop();
                }
                _ => {}
            }
            let text = std::fs::read_to_string(&p).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let code: String =
                code.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
            out.insert(path, code);
        }
    }
    out
}

/// The paths named at `text[at..]`, just after `crate::` or `super::`: `a::b::C` gives one, a group
/// `{a::X, b::{c, d}}` one per member (only the segments up to the group matter here).
fn paths_at(text: &str, at: usize) -> Vec<ModPath> {
    let bytes = text.as_bytes();
    let mut i = at;
    let mut prefix = ModPath::new();
    loop {
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
        if i > start {
            prefix.push(text[start..i].to_string());
        }
        if text[i..].starts_with("::") {
            i += 2;
            if text[i..].starts_with('{') {
                // A group: split its top level on commas.
                let mut depth = 0;
                let mut member_start = i + 1;
                let mut out = Vec::new();
                for (k, ch) in text[i..].char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' | ',' if depth == 1 => {
                            for tail in paths_at(text, member_start) {
                                out.push(prefix.iter().cloned().chain(tail).collect());
                            }
                            member_start = i + k + 1;
                            if ch == '}' {
                                return out;
                            }
                        }
                        '}' => depth -= 1,
                        _ => {}
                    }
                }
                return out;
            }
            continue;
        }
        let member = text[at..].trim_start();
        if prefix.is_empty() && member.starts_with("self") {
            return vec![];
        }
        return vec![prefix];
    }
}

/// Module `from` refers to these module paths (resolved against the known modules; longest prefix).
fn references(from: &ModPath, code: &str, known: &BTreeSet<ModPath>) -> BTreeSet<ModPath> {
    let mut out = BTreeSet::new();
    // `super` of a file module is its parent; this crate's files are all file modules (mod.rs included:
    // its path is the directory's module, whose `super` is the directory's parent).
    for (needle, base) in [("crate::", ModPath::new()), ("super::", from[..from.len().saturating_sub(1)].to_vec())] {
        let mut rest = 0;
        while let Some(k) = code[rest..].find(needle) {
            let at = rest + k;
            rest = at + needle.len();
            let preceded_by_path = at >= 2 && &code[at - 2..at] == "::";
            let ident_before = at > 0 && {
                let c = code.as_bytes()[at - 1];
                c.is_ascii_alphanumeric() || c == b'_'
            };
            if preceded_by_path || ident_before {
                continue;
            }
            let mut base = base.clone();
            while needle == "super::" && code[rest..].starts_with("super::") {
                base.pop();
                rest += needle.len();
            }
            for tail in paths_at(code, rest) {
                let full: ModPath = base.iter().cloned().chain(tail).collect();
                let resolved = (0..=full.len()).rev().map(|n| full[..n].to_vec()).find(|p| known.contains(p));
                if let Some(p) = resolved {
                    out.insert(p);
                }
            }
        }
    }
    out
}

/// Strongly connected components with more than one member (Tarjan), as sorted name lists.
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        let edges = s.edges;
        for w in edges.get(v).into_iter().flatten() {
            if !s.index.contains_key(w.as_str()) {
                visit(s, w);
                let lw = s.low[w.as_str()];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w.as_str()) {
                let iw = s.index[w.as_str()];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

/// For every module, the edges among its children: `a::b::x` referring to `a::c::y` is the edge b → c
/// under `a`.
fn sibling_graphs(mods: &BTreeMap<ModPath, String>) -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let known: BTreeSet<ModPath> = mods.keys().cloned().collect();
    let mut graphs: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (from, code) in mods {
        for to in references(from, code, &known) {
            let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if common < from.len() && common < to.len() {
                let parent = if common == 0 { "crate".to_string() } else { from[..common].join("::") };
                graphs.entry(parent).or_default().entry(from[common].clone()).or_default().insert(to[common].clone());
            }
        }
    }
    graphs
}

#[test]
fn module_graph_has_no_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mods = modules(&src);
    assert!(mods.contains_key(&vec!["index".to_string(), "snapshot".to_string()]), "src/ was not read");
    let graphs = sibling_graphs(&mods);
    assert!(graphs["crate"].get("backup").is_some_and(|to| to.contains("repository")), "edges were not read");
    let found: Vec<String> = graphs
        .iter()
        .flat_map(|(parent, g)| cycles(g).into_iter().map(move |c| format!("under {parent}: {}", c.join(" <-> "))))
        .collect();
    assert!(found.is_empty(), "module cycles (move the shared items down a floor):\n{}", found.join("\n"));
}

#[test]
fn the_cycle_check_sees_a_cycle() {
    let mut mods = BTreeMap::new();
    mods.insert(vec![], String::new());
    mods.insert(vec!["a".to_string()], "use crate::b::{X, c::Y};".to_string());
    mods.insert(vec!["b".to_string()], String::new());
    mods.insert(vec!["b".to_string(), "c".to_string()], "fn f() { super::super::a::g() }".to_string());
    mods.insert(vec!["b".to_string(), "d".to_string()], "use super::c::Z;".to_string());
    let graphs = sibling_graphs(&mods);
    assert_eq!(graphs["b"]["d"], BTreeSet::from(["c".to_string()]));
    assert_eq!(cycles(&graphs["crate"]), vec![vec!["a".to_string(), "b".to_string()]]);
}
