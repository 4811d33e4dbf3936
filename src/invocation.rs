//! What the user asked for, validated and free of clap types: the second stage of the
//! command line.

use std::path::PathBuf;

use crate::report::style::ColorChoice;

#[derive(Debug)]
pub struct Invocation {
    pub global: Global,
    pub command: Command,
}

#[derive(Debug, Default, Clone)]
pub struct Global {
    pub config: Option<PathBuf>,
    pub env: Option<String>,
    pub color: ColorChoice,
}

#[derive(Debug)]
pub enum Command {
    Run(RunOptions),
    Plan(RunOptions),
    Health(HealthOptions),
    Lint {
        paths: Vec<PathBuf>,
        explain: bool,
        format: LintFormat,
    },
    Report {
        record: PathBuf,
        format: ReportFormat,
    },
    Test {
        paths: Vec<PathBuf>,
        format: TestFormat,
        from_record: Option<PathBuf>,
    },
    History {
        runbook: Option<String>,
        limit: usize,
        format: RunFormat,
    },
    List,
    Show {
        name: String,
    },
    Graph {
        name: String,
        format: GraphFormat,
    },
    Actions {
        name: Option<String>,
        markdown: bool,
    },
    Schema,
    Completions(Shell),
    Man,
    Rbac {
        runbooks: Vec<String>,
        format: RbacFormat,
    },
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub name: String,
    /// `run --resume RECORD`.
    pub resume: Option<PathBuf>,
    pub params: Vec<String>,
    pub dry_run: bool,
    pub examples: bool,
    pub yes: bool,
    pub yes_manual: bool,
    pub wait_lock: bool,
    pub tags: Vec<String>,
    pub only: Vec<String>,
    pub max_parallel: usize,
    pub format: RunFormat,
    pub record: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct HealthOptions {
    pub runbook: String,
    pub quick: bool,
    pub format: crate::health::render::HealthFormat,
    pub output: Option<PathBuf>,
    pub watch: Option<std::time::Duration>,
    pub max_parallel: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestFormat {
    Human,
    Github,
    Junit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Human,
    Json,
    Markdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LintFormat {
    Human,
    Json,
    Github,
}

/// Shells `opsctl completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    PowerShell,
    Elvish,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    Mermaid,
    Dot,
}

/// `opsctl rbac --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RbacFormat {
    /// A ready-to-apply Role.
    Yaml,
    /// `{"rules": [...]}`.
    Json,
}
