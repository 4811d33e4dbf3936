//! The run record: one JSON line per event, written and flushed as it happens, so a
//! crash or Ctrl-C still leaves the incident timeline on disk.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::exec::{Event, Reporter};

pub struct RecordWriter {
    file: BufWriter<File>,
    path: PathBuf,
    failed: bool,
}

impl RecordWriter {
    /// Creates the file (and its directory).
    pub fn create(path: &Path) -> std::io::Result<RecordWriter> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)?;
            }
        }
        // Records hold query results and response bodies: readable by their owner only.
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        Ok(RecordWriter {
            file: BufWriter::new(file),
            path: path.to_path_buf(),
            failed: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `$XDG_STATE_HOME/opsctl/runs/<run-id>.jsonl` (or `~/.local/state/...`).
pub fn default_path(run_id: &str) -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local").join("state")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("opsctl")
        .join("runs")
        .join(format!("{run_id}.jsonl"))
}

impl Reporter for RecordWriter {
    fn event(&mut self, event: &Event) {
        if self.failed {
            return;
        }
        let line = match serde_json::to_string(event) {
            Ok(l) => l,
            Err(_) => return,
        };
        if writeln!(self.file, "{line}")
            .and_then(|()| self.file.flush())
            .is_err()
        {
            self.failed = true;
            eprintln!(
                "opsctl: warning: cannot write the record {}",
                self.path.display()
            );
        }
    }

    fn finish(&mut self) {
        let _ = self.file.flush();
        let _ = self.file.get_ref().sync_data();
    }
}
