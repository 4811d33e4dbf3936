//! docs/seed-coverage.md against the seed runbooks (docs/seeds/) and the library: every
//! heading of every seed is in the map, every runbook and step the map names exists, the
//! seed mistakes name a test that exists, and fewer than 15 % of procedures are manual.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::support::repo;

/// One table row: its cells, trimmed.
type Row = Vec<String>;

#[derive(Default, Debug)]
struct Section {
    procedures: Vec<Row>,
    not_procedures: Vec<Row>,
    mistakes: Vec<Row>,
}

/// The map's sections by seed file name.
fn parse_map(text: &str) -> BTreeMap<String, Section> {
    let mut map: BTreeMap<String, Section> = BTreeMap::new();
    let mut seed: Option<String> = None;
    let mut table = "";
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("## ") {
            seed = rest
                .split('`')
                .nth(1)
                .filter(|s| s.ends_with(".txt"))
                .map(str::to_string);
            if let Some(s) = &seed {
                assert!(
                    map.insert(s.clone(), Section::default()).is_none(),
                    "{s} has two sections in the map"
                );
            }
            table = "";
            continue;
        }
        if let Some(rest) = line.strip_prefix("### ") {
            table = match rest.trim() {
                "Procedures" => "procedures",
                "Not procedures" => "not",
                "Seed mistakes made impossible" => "mistakes",
                _ => "",
            };
            continue;
        }
        let (Some(seed), true) = (&seed, line.starts_with('|')) else {
            continue;
        };
        // `\|` is a pipe inside a cell (markdown's escape), not a cell border.
        let cells: Row = line
            .trim()
            .replace("\\|", "\u{1}")
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().replace('\u{1}', "|"))
            .collect();
        let header = cells
            .first()
            .is_some_and(|c| c == "Seed heading" || c == "Seed says" || c.starts_with("---"));
        if header {
            continue;
        }
        let section = map.get_mut(seed).expect("section");
        match table {
            "procedures" => section.procedures.push(cells),
            "not" => section.not_procedures.push(cells),
            "mistakes" => section.mistakes.push(cells),
            _ => {}
        }
    }
    map
}

/// Markdown headings (`##` and deeper) outside code fences, as written after the `#`s.
fn headings(seed: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in seed.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if hashes >= 2 && line[hashes..].starts_with(' ') {
            out.push(line[hashes..].trim().to_string());
        }
    }
    out
}

/// The text without its parenthesised notes.
fn without_parentheses(text: &str) -> String {
    let mut depth = 0usize;
    text.chars()
        .filter(|c| {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth = depth.saturating_sub(1);
                    return false;
                }
                _ => {}
            }
            depth == 0
        })
        .collect()
}

/// Backticked names in a cell: "`a`, `b`" → [a, b].
fn ticked(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

fn library() -> opsctl::library::Library {
    opsctl::library::Library::scan(&[repo().join("runbooks")])
}

fn seeds() -> Vec<(String, String)> {
    let dir = repo().join("docs/seeds");
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("docs/seeds/")
        .flatten()
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(e.path()).expect("seed");
            (name, text)
        })
        .filter(|(n, _)| n.ends_with(".txt"))
        .collect();
    out.sort();
    out
}

fn map() -> BTreeMap<String, Section> {
    parse_map(
        &std::fs::read_to_string(repo().join("docs/seed-coverage.md"))
            .expect("docs/seed-coverage.md"),
    )
}

#[test]
fn every_seed_heading_is_in_the_map() {
    let map = map();
    let seeds = seeds();
    assert_eq!(seeds.len(), 5, "docs/seeds/ holds the five seed runbooks");
    let mut missing = Vec::new();
    for (name, text) in &seeds {
        let Some(section) = map.get(name) else {
            missing.push(format!("{name}: no section"));
            continue;
        };
        let listed: BTreeSet<&str> = section
            .procedures
            .iter()
            .chain(&section.not_procedures)
            .filter_map(|r| r.first().map(String::as_str))
            .collect();
        for h in headings(text) {
            if !listed.contains(h.as_str()) {
                missing.push(format!("{name}: {h}"));
            }
        }
        let all: BTreeSet<String> = headings(text).into_iter().collect();
        for h in &listed {
            assert!(
                all.contains(*h),
                "{name}: the map lists `{h}`, which is no heading of the seed"
            );
        }
    }
    assert!(
        missing.is_empty(),
        "seed headings missing from docs/seed-coverage.md:\n{}",
        missing.join("\n")
    );
    for name in map.keys() {
        assert!(
            seeds.iter().any(|(n, _)| n == name),
            "the map has a section for {name}, which is not in docs/seeds/"
        );
    }
}

#[test]
fn every_runbook_and_step_of_the_map_exists() {
    let lib = library();
    let mut problems = Vec::new();
    let mut procedures = BTreeSet::new();
    let mut manual = BTreeSet::new();
    for (seed, section) in map() {
        for row in &section.procedures {
            let [heading, runbook, steps, notes, ..] = row.as_slice() else {
                problems.push(format!("{seed}: a row with fewer than 4 cells: {row:?}"));
                continue;
            };
            procedures.insert((seed.clone(), heading.clone()));
            if runbook == "manual" {
                if notes.is_empty() {
                    problems.push(format!("{seed}: `{heading}` is manual without a reason"));
                }
                manual.insert((seed.clone(), heading.clone()));
                continue;
            }
            let names = ticked(runbook);
            let [name] = names.as_slice() else {
                problems.push(format!("{seed}: `{heading}`: runbook cell {runbook:?}"));
                continue;
            };
            let Some(rb) = lib.load_quietly(name) else {
                problems.push(format!("{seed}: `{heading}`: no runbook `{name}`"));
                continue;
            };
            for id in ticked(steps) {
                if rb.step(&id).is_none() {
                    problems.push(format!("{seed}: `{heading}`: `{name}` has no step `{id}`"));
                }
            }
        }
        for row in &section.mistakes {
            let [said, why, at, test, ..] = row.as_slice() else {
                problems.push(format!("{seed}: a mistake row with fewer than 4 cells"));
                continue;
            };
            assert!(!said.is_empty() && !why.is_empty(), "{seed}: {row:?}");
            // "`runbook` · `step`, `step` (a note)": the runbook, then its steps.
            let (rb_cell, steps_cell) = at.split_once('·').unwrap_or((at, ""));
            let names = ticked(rb_cell);
            let steps = ticked(&without_parentheses(steps_cell));
            match (
                names.as_slice(),
                lib.load_quietly(names.first().map_or("", |n| n)),
            ) {
                ([_], Some(rb)) if !steps.is_empty() => {
                    for step in &steps {
                        if rb.step(step).is_none() {
                            problems.push(format!("{seed}: mistake {said}: no step `{step}`"));
                        }
                    }
                }
                _ => problems.push(format!("{seed}: mistake {said}: cell {at:?}")),
            }
            for t in ticked(test) {
                if !test_exists(&t) {
                    problems.push(format!("{seed}: mistake {said}: no test `{t}`"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Wholly manual procedures (a heading every row of which is manual) stay under 15 %.
    let wholly_manual = manual
        .iter()
        .filter(|m| {
            map()
                .get(&m.0)
                .is_some_and(|s| s.procedures.iter().all(|r| r[0] != m.1 || r[1] == "manual"))
        })
        .count();
    let total = procedures.len();
    assert!(total >= 100, "only {total} procedures in the map");
    assert!(
        wholly_manual * 100 < total * 15,
        "{wholly_manual} of {total} procedures are wholly manual (at most 15 %)"
    );
}

/// `library::vault::jwt_rotation_keeps_the_other_keys` → a `fn` of that name in
/// tests/library/vault.rs (or `kube::opsctl::x` → tests/kube/opsctl.rs).
fn test_exists(path: &str) -> bool {
    let parts: Vec<&str> = path.split("::").collect();
    let Some((name, modules)) = parts.split_last() else {
        return false;
    };
    let file = repo()
        .join("tests")
        .join(modules.join("/"))
        .with_extension("rs");
    let text = std::fs::read_to_string(Path::new(&file)).unwrap_or_default();
    text.contains(&format!("fn {name}("))
}

#[test]
fn the_map_parser_reads_headings_outside_fences_only() {
    let seed = "# Title\n## A\n```bash\n# comment\n## not a heading\n```\n### 1.1 B\n####C\n";
    assert_eq!(headings(seed), vec!["A", "1.1 B"]);
    assert_eq!(ticked("`a`, `b`"), vec!["a", "b"]);
    assert_eq!(without_parentheses("`a` (`x -i`), `b`"), "`a` , `b`");
}
