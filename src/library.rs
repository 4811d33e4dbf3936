//! The runbook library: runbook files found in the configured directories, looked up by
//! name, loaded and checked (the same checks as `lint`) before anything runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{Config, display_path};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::graph::StepGraph;
use crate::lint::check_runbook;
use crate::model::Runbook;
use crate::rules::Rule;
use crate::source::SourceFile;

/// Runbook names → files, and the actions their steps may use. Each file is read and
/// parsed at most once per invocation, however many runbooks call it (clones share
/// the cache).
#[derive(Debug, Default, Clone)]
pub struct Library {
    registry: crate::actions::Registry,
    parsed: Arc<std::sync::Mutex<std::collections::HashMap<PathBuf, Arc<Parsed>>>>,
    entries: BTreeMap<String, PathBuf>,
    /// Names found in more than one file: (name, the file kept, the other file).
    duplicates: Vec<(String, PathBuf, PathBuf)>,
}

/// One file, read and loaded (not yet checked).
#[derive(Debug)]
pub struct Parsed {
    /// The model, when the file is structurally usable, with the ids of broken steps.
    pub loaded: Option<(Arc<Runbook>, Vec<String>)>,
    /// What reading and loading found.
    pub diagnostics: Vec<Diagnostic>,
}

/// A runbook that passed every check, with its graph.
#[derive(Debug)]
pub struct Checked {
    pub runbook: Arc<Runbook>,
    pub graph: StepGraph,
    /// Warnings found while checking.
    pub warnings: Vec<Diagnostic>,
}

impl Library {
    /// Scans directories for `*.yaml`/`*.yml` files (recursively). Missing directories are
    /// skipped; the first file of a name wins.
    pub fn scan(dirs: &[PathBuf]) -> Library {
        let mut lib = Library::default();
        for dir in dirs {
            for file in yaml_files(dir) {
                lib.add(file);
            }
        }
        lib
    }

    pub fn for_config(config: &Config) -> Library {
        Library::scan(&config.runbook_dirs)
    }

    /// The same library with other actions (tests register their own).
    pub fn with_registry(mut self, registry: crate::actions::Registry) -> Library {
        self.registry = registry;
        self
    }

    pub fn registry(&self) -> &crate::actions::Registry {
        &self.registry
    }

    /// Registers a file under its stem; a second file of the same name is remembered as
    /// a duplicate (a lint finding, and `run` refuses the ambiguous name).
    pub fn add(&mut self, path: PathBuf) {
        let Some(stem) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
            return;
        };
        if is_config_file(&path) {
            return;
        }
        match self.entries.get(&stem) {
            None => {
                self.entries.insert(stem, path);
            }
            Some(first) if same_file(first, &path) => {}
            Some(first) => {
                let first = first.clone();
                if !self
                    .duplicates
                    .iter()
                    .any(|(n, _, p)| *n == stem && same_file(p, &path))
                {
                    self.duplicates.push((stem, first, path));
                }
            }
        }
    }

    /// Names that more than one file claims: (name, one file, another file).
    pub fn duplicates(&self) -> &[(String, PathBuf, PathBuf)] {
        &self.duplicates
    }

    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    pub fn entries(&self) -> impl Iterator<Item = (&str, &Path)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_path()))
    }

    /// A runbook by name, or a path to a runbook file.
    pub fn resolve(&self, name_or_path: &str) -> Result<PathBuf, Diagnostic> {
        let as_path = Path::new(name_or_path);
        if name_or_path.ends_with(".yaml")
            || name_or_path.ends_with(".yml")
            || name_or_path.contains('/')
        {
            if as_path.is_file() {
                return Ok(as_path.to_path_buf());
            }
            return Err(Diagnostic::error(
                Rule::UnknownRunbook,
                format!("runbook file {name_or_path} not found"),
            ));
        }
        if let Some((_, first, second)) = self.duplicates.iter().find(|d| d.0 == name_or_path) {
            return Err(Diagnostic::error(
                Rule::DuplicateRunbook,
                format!(
                    "runbook name `{name_or_path}` is ambiguous: {} and {} both define it",
                    first.display(),
                    second.display()
                ),
            )
            .help(
                "rename or remove one of the files, or pass the file's path instead of the name",
            ));
        }
        if let Some(p) = self.entries.get(name_or_path) {
            return Ok(p.clone());
        }
        let help = crate::suggest::help(name_or_path, self.names()).unwrap_or_else(|| {
            if self.entries.is_empty() {
                "no runbooks found; set `runbooks:` in opsctl.yaml or pass --config".to_string()
            } else {
                format!(
                    "known runbooks: {}",
                    self.names().collect::<Vec<_>>().join(", ")
                )
            }
        });
        Err(Diagnostic::error(
            Rule::UnknownRunbook,
            format!("no runbook named `{name_or_path}`"),
        )
        .help(help))
    }

    /// A file read and loaded, from the cache after the first time.
    pub fn parsed(&self, path: &Path) -> Arc<Parsed> {
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if let Some(p) = self.parsed.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return p;
        }
        let parsed = Arc::new(match read_source(path) {
            Err(d) => Parsed {
                loaded: None,
                diagnostics: vec![d],
            },
            Ok(file) => {
                let mut diags = Diagnostics::new();
                let loaded = crate::loader::load_runbook(&file, &self.registry, &mut diags)
                    .map(|(rb, broken)| (Arc::new(rb), broken));
                Parsed {
                    loaded,
                    diagnostics: diags.into_vec(),
                }
            }
        });
        if let Ok(mut m) = self.parsed.lock() {
            m.insert(key, parsed.clone());
        }
        parsed
    }

    /// A runbook's model without checking it (its own problems are its own file's
    /// findings): for checks that look at what a runbook declares.
    pub fn load_quietly(&self, name: &str) -> Option<Arc<Runbook>> {
        let path = self.entries.get(name)?;
        self.parsed(path).loaded.as_ref().map(|(rb, _)| rb.clone())
    }

    /// Reads, loads and checks one runbook file; any error-level finding fails it.
    pub fn load_checked(
        &self,
        path: &Path,
        config: Option<&Config>,
    ) -> Result<Checked, Vec<Diagnostic>> {
        let parsed = self.parsed(path);
        let mut diags = Diagnostics::new();
        for d in &parsed.diagnostics {
            diags.push(d.clone());
        }
        let Some((runbook, broken)) = parsed.loaded.clone() else {
            return Err(diags.into_vec());
        };
        let graph = check_runbook(&runbook, &broken, Some(self), config, &mut diags);
        if diags.has_errors() {
            let mut v = diags.into_vec();
            crate::diagnostic::sort(&mut v);
            return Err(v);
        }
        Ok(Checked {
            runbook,
            graph,
            warnings: diags.into_vec(),
        })
    }
}

/// Reads a file into a [`SourceFile`], shown relative to the cwd.
pub fn read_source(path: &Path) -> Result<Arc<SourceFile>, Diagnostic> {
    let meta = std::fs::metadata(path).map_err(|e| {
        Diagnostic::error(Rule::Io, format!("cannot read {}: {e}", path.display())).in_file(path)
    })?;
    if meta.len() > crate::yaml::MAX_FILE_BYTES as u64 {
        return Err(Diagnostic::error(
            Rule::YamlLimits,
            format!(
                "file is too large ({} bytes; the limit is {} bytes)",
                meta.len(),
                crate::yaml::MAX_FILE_BYTES
            ),
        )
        .in_file(path));
    }
    let bytes = std::fs::read(path).map_err(|e| {
        Diagnostic::error(Rule::Io, format!("cannot read {}: {e}", path.display())).in_file(path)
    })?;
    let text = String::from_utf8(bytes).map_err(|e| not_utf8(path, &e))?;
    Ok(SourceFile::new(display_path(path), text))
}

/// Points at the first byte that is not UTF-8 (line and column come from the valid text
/// before it, which the lossy copy keeps byte for byte).
fn not_utf8(path: &Path, e: &std::string::FromUtf8Error) -> Diagnostic {
    let at = e.utf8_error().valid_up_to();
    let byte = e.as_bytes().get(at).copied().unwrap_or(0);
    let file = SourceFile::new(
        display_path(path),
        String::from_utf8_lossy(e.as_bytes()).into_owned(),
    );
    let span = crate::source::Span::new(at, at + char::REPLACEMENT_CHARACTER.len_utf8());
    Diagnostic::error(
        Rule::YamlSyntax,
        format!(
            "{} is not UTF-8 text: byte 0x{byte:02X} at offset {at}",
            path.display()
        ),
    )
    .at(&file, span, "not UTF-8")
    .help("save the file as UTF-8")
}

/// Whether two paths name the same file (through symlinks and `.`).
fn same_file(a: &Path, b: &Path) -> bool {
    a == b
        || matches!(
            (std::fs::canonicalize(a), std::fs::canonicalize(b)),
            (Ok(x), Ok(y)) if x == y
        )
}

pub fn is_config_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| crate::config::CONFIG_NAMES.contains(&n))
}

/// A runbook's test cases (`NAME.test.yaml` beside it): not a runbook.
pub fn is_test_file(p: &Path) -> bool {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.ends_with(".test.yaml") || name.ends_with(".test.yml")
}

/// `*.yaml`/`*.yml` files under `dir`, sorted, recursively. Each real directory is walked
/// once, so symlinks back up the tree (`sub -> .`) cannot make the walk loop or explode.
pub fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    // An entry of `runbooks:` may name one file (`../../runbooks/health.yaml`).
    if dir.is_file() {
        let yaml = matches!(
            dir.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        );
        return if yaml && !is_test_file(dir) {
            vec![dir.to_path_buf()]
        } else {
            Vec::new()
        };
    }
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(real) = std::fs::canonicalize(&d) {
            if !seen.insert(real) {
                continue;
            }
        }
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in rd.flatten() {
            // `runbooks: [.]` lists `a.yaml`, not `./a.yaml`.
            let p = if d == Path::new(".") {
                PathBuf::from(entry.file_name())
            } else {
                entry.path()
            };
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
                && !is_test_file(&p)
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_may_name_one_file() {
        let dir = std::env::temp_dir().join(format!("opsctl-lib-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = dir.join("a.yaml");
        std::fs::write(&a, "name: a").unwrap();
        std::fs::write(dir.join("a.test.yaml"), "cases: []").unwrap();
        std::fs::write(dir.join("notes.txt"), "x").unwrap();
        assert_eq!(yaml_files(&a), vec![a.clone()]);
        assert!(yaml_files(&dir.join("a.test.yaml")).is_empty());
        assert!(yaml_files(&dir.join("notes.txt")).is_empty());
        assert_eq!(yaml_files(&dir).len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn each_file_is_parsed_once_per_invocation() {
        let dir = std::env::temp_dir().join(format!("opsctl-lib-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("a.yaml"),
            "name: a\ntitle: A\nsteps:\n  - id: x\n    tcp: { host: h, port: 1 }\n",
        )
        .unwrap();
        let lib = Library::scan(std::slice::from_ref(&dir));
        let first = lib.load_quietly("a").unwrap();
        let clone = lib.clone();
        let again = clone.load_quietly("a").unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        let checked = lib.load_checked(&dir.join("a.yaml"), None).unwrap();
        assert!(Arc::ptr_eq(&first, &checked.runbook));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
