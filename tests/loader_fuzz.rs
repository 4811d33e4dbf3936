//! Property test: thousands of mutated runbook files never make the loader or the
//! checks panic, whatever bytes they contain.

use std::sync::Arc;

use opsctl::diagnostic::Diagnostics;
use opsctl::source::SourceFile;
use proptest::prelude::*;

const SEED: &str = include_str!("fixtures/valid/every-feature.yaml");

/// Loads and checks like `lint` does, in memory.
fn load_and_check(text: &str) {
    let file: Arc<SourceFile> = SourceFile::new("fuzz.yaml", text);
    let mut diags = Diagnostics::new();
    if let Some((rb, broken)) =
        opsctl::loader::load_runbook(&file, &opsctl::actions::Registry::builtin(), &mut diags)
    {
        let graph = opsctl::lint::check_runbook(&rb, &broken, None, None, &mut diags);
        let _ = graph.waves();
    }
    for d in diags.iter() {
        let _ = opsctl::diagnostic::render_human(d, false);
    }
}

#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, String),
    Duplicate(usize, usize, usize),
    Byte(usize, u8),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let fragment = prop_oneof![
        Just("${{".to_string()),
        Just("}}".to_string()),
        Just(": ".to_string()),
        Just("\n  - ".to_string()),
        Just("[".to_string()),
        Just("{".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("needs: [".to_string()),
        Just("steps.".to_string()),
        Just("'".to_string()),
        Just("\"".to_string()),
        Just("\t".to_string()),
        Just("é".to_string()),
        "[a-z_.:{}\\[\\]$ -]{0,12}",
    ];
    prop::collection::vec(
        prop_oneof![
            (any::<usize>(), 0usize..40).prop_map(|(a, n)| Edit::Delete(a, n)),
            (any::<usize>(), fragment).prop_map(|(a, s)| Edit::Insert(a, s)),
            (any::<usize>(), 0usize..200, any::<usize>())
                .prop_map(|(a, n, b)| Edit::Duplicate(a, n, b)),
            (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Edit::Byte(a, b)),
        ],
        1..8,
    )
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for e in edits {
        let len = bytes.len().max(1);
        match e {
            Edit::Delete(at, n) => {
                let at = at % len;
                let end = (at + n).min(bytes.len());
                if at < end {
                    bytes.drain(at..end);
                }
            }
            Edit::Insert(at, s) => {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, s.bytes());
            }
            Edit::Duplicate(at, n, to) => {
                let at = at % len;
                let end = (at + n).min(bytes.len());
                let chunk: Vec<u8> = bytes.get(at..end).map(<[u8]>::to_vec).unwrap_or_default();
                let to = to % (bytes.len() + 1);
                bytes.splice(to..to, chunk);
            }
            Edit::Byte(at, b) => {
                if !bytes.is_empty() {
                    let at = at % bytes.len();
                    bytes[at] = *b;
                }
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_runbooks_never_panic_the_loader(e in edits()) {
        load_and_check(&apply(SEED, &e));
    }
}

#[test]
fn the_seed_itself_loads_clean() {
    let file = SourceFile::new("every-feature.yaml", SEED);
    let mut diags = Diagnostics::new();
    let loaded =
        opsctl::loader::load_runbook(&file, &opsctl::actions::Registry::builtin(), &mut diags);
    assert!(loaded.is_some());
    assert!(
        !diags.has_errors(),
        "{:?}",
        diags.iter().map(|d| &d.message).collect::<Vec<_>>()
    );
}
