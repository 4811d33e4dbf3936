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
    state_dir().join("runs").join(format!("{run_id}.jsonl"))
}

/// opsctl's state directory: `$XDG_STATE_HOME/opsctl` (`~/.local/state/opsctl`).
pub fn state_dir() -> PathBuf {
    std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local").join("state")))
        .unwrap_or_else(std::env::temp_dir)
        .join("opsctl")
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

/// A record read back: its events, and whether the end was missing (a crash or SIGKILL).
pub struct ReadRecord {
    pub events: Vec<Event>,
    /// The record stops before the run's end; a `run_finished` was added, `unfinished`.
    pub unfinished: bool,
    /// A last line cut short by the crash, skipped.
    pub torn_tail: bool,
}

/// Why a record cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: not a record line: {source}")]
    Line {
        path: String,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: no run in this record")]
    Empty { path: String },
}

/// Reads a record written by [`RecordWriter`]. A last line cut short (the process was
/// killed mid-write) is skipped; a record without its run's end gets one, `unfinished`,
/// dated at its last event.
pub fn read(path: &Path) -> Result<ReadRecord, RecordError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| RecordError::Io {
        path: shown.clone(),
        source,
    })?;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut events = Vec::with_capacity(lines.len());
    let mut torn_tail = false;
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str::<Event>(line) {
            Ok(e) => events.push(e),
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => torn_tail = true,
            Err(source) => {
                return Err(RecordError::Line {
                    path: shown,
                    line: i + 1,
                    source,
                });
            }
        }
    }
    let started = events.iter().find_map(|e| match e {
        Event::RunStarted {
            parent: None,
            run_id,
            runbook,
            at,
            ..
        } => Some((run_id.clone(), runbook.clone(), *at)),
        _ => None,
    });
    let Some((run_id, runbook, at)) = started else {
        return Err(RecordError::Empty { path: shown });
    };
    let finished = events
        .iter()
        .any(|e| matches!(e, Event::RunFinished { parent: None, .. }));
    if !finished {
        let last = events.iter().filter_map(event_time).max().unwrap_or(at);
        events.push(Event::RunFinished {
            run_id,
            runbook,
            parent: None,
            status: crate::exec::RunStatus::Unfinished,
            duration_ms: (last - at).num_milliseconds().max(0) as u64,
            at: last,
        });
    }
    Ok(ReadRecord {
        events,
        unfinished: !finished,
        torn_tail,
    })
}

fn event_time(e: &Event) -> Option<chrono::DateTime<chrono::Utc>> {
    match e {
        Event::Record { at, .. }
        | Event::RunStarted { at, .. }
        | Event::StepStarted { at, .. }
        | Event::StepRetrying { at, .. }
        | Event::Confirmation { at, .. }
        | Event::StepFinished { at, .. }
        | Event::RunFinished { at, .. } => Some(*at),
    }
}
