//! Command-line arguments (clap). Nothing past [`Cli::into_invocation`] sees clap types.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::health::render::HealthFormat;
use crate::invocation::{
    Command, Global, GraphFormat, HealthOptions, Invocation, LintFormat, ReportFormat, RunFormat,
    RunOptions, Shell, TestFormat,
};
use crate::report::style::ColorChoice;

/// Default of `--max-parallel`: a hundred independent checks run in one round, so a run
/// takes about the time of its slowest check; the services themselves are protected by
/// their targets' pools.
pub const DEFAULT_MAX_PARALLEL: u32 = 128;

#[derive(Parser, Debug)]
#[command(
    name = "opsctl",
    version,
    about = "Runbook-as-code for on-call engineers",
    long_about = "Runbook-as-code for on-call engineers.\n\nRunbooks are YAML step graphs run against HTTP/Prometheus endpoints, Postgres, Redis and Kubernetes. Independent checks run concurrently; mutations ask first; every run leaves a record.",
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Config file (default: opsctl.yaml here or upward, then $XDG_CONFIG_HOME/opsctl/)
    #[arg(long, global = true, value_name = "FILE", env = "OPSCTL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Environment of the config to use (default: its default_env)
    #[arg(long, global = true, value_name = "NAME", env = "OPSCTL_ENV")]
    pub env: Option<String>,
    /// When to use colours (NO_COLOR is honoured)
    #[arg(long, global = true, value_enum, default_value_t = ColorArg::Auto)]
    pub color: ColorArg,
    #[command(subcommand)]
    pub command: CliCommand,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum ColorArg {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand, Debug)]
pub enum CliCommand {
    /// Execute a runbook
    Run(RunArgs),
    /// Live preview: run the read-only steps, show what the mutating ones would do
    Plan(RunArgs),
    /// Check the system: the `health` runbook, read-only, graded healthy / degraded /
    /// unhealthy per environment (`--env a,b` checks several at once)
    #[command(
        after_help = "Exit codes: 0 healthy, 1 degraded, 2 unhealthy, 3 could not run (the reason is on stderr)."
    )]
    Health(HealthArgs),
    /// Validate runbooks and config (rule codes, file:line:column)
    Lint(LintArgs),
    /// Re-render a finished (or crashed) run from its record
    Report {
        /// The record file (JSON lines; `run` prints where it wrote it)
        record: PathBuf,
        /// human: as the run showed it; json: the run's `--format json` object;
        /// markdown: a postmortem timeline
        #[arg(long, value_enum, default_value_t = ReportFormatArg::Human)]
        format: ReportFormatArg,
    },
    /// Run runbook test cases (NAME.test.yaml beside a runbook); contacts nothing
    Test {
        /// Test files or directories (default: the config's runbook directories)
        paths: Vec<PathBuf>,
        /// human (default), github (workflow annotations), junit (XML)
        #[arg(long, value_enum, default_value_t = TestFormatArg::Human)]
        format: TestFormatArg,
        /// Print a test case made from a run's record (its step outputs and what ran),
        /// to add to NAME.test.yaml: an incident becomes a regression test
        #[arg(long, value_name = "RECORD", conflicts_with = "paths")]
        from_record: Option<PathBuf>,
    },
    /// Past runs from the records directory, newest first
    History {
        /// Only runs of this runbook
        runbook: Option<String>,
        /// How many runs to show
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long, value_enum, default_value_t = RunFormatArg::Human)]
        format: RunFormatArg,
    },
    /// List the runbooks
    List,
    /// Show a runbook as markdown
    Show {
        /// Runbook name (or path to a file)
        name: String,
    },
    /// Draw a runbook's step graph
    Graph {
        /// Runbook name (or path to a file)
        name: String,
        #[arg(long, value_enum, default_value_t = GraphFormatArg::Mermaid)]
        format: GraphFormatArg,
    },
    /// Describe the actions a step can take (arguments, outputs, what mutates)
    Actions {
        /// One action, e.g. `http` or `k8s.scale` (default: all)
        name: Option<String>,
        /// The whole reference as markdown (docs/actions.md)
        #[arg(long)]
        markdown: bool,
    },
    /// Print the JSON Schema of the runbook format (for editors)
    Schema,
    /// Print shell completions
    Completions {
        #[arg(value_enum)]
        shell: ShellArg,
    },
    /// Print the man page (roff)
    Man,
    /// Print the Kubernetes RBAC rules runbooks need (a Role to apply, or JSON)
    Rbac {
        /// Runbook names (or paths); the runbooks they run are followed
        #[arg(required = true)]
        runbooks: Vec<String>,
        #[arg(long, value_enum, default_value_t = RbacFormatArg::Yaml)]
        format: RbacFormatArg,
    },
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Runbook name (or path to a runbook file)
    #[arg(required_unless_present = "resume")]
    pub name: Option<String>,
    /// Resume the run of this record: run again what failed, errored or was cancelled and
    /// everything after it; reuse what succeeded (its services are not contacted again)
    #[arg(long, value_name = "RECORD", conflicts_with_all = ["dry_run", "name"])]
    pub resume: Option<PathBuf>,
    /// A param: key=value (repeatable)
    #[arg(long = "param", short = 'p', value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Print what would happen; contact nothing, change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: fill required params from their examples
    #[arg(long, requires = "dry_run")]
    pub examples: bool,
    /// Confirm every mutating step without asking
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Confirm manual steps without asking
    #[arg(long)]
    pub yes_manual: bool,
    /// When another run of this runbook in this environment holds the team lock, wait for
    /// it (default: its mutating steps are not run, and say who holds it)
    #[arg(long)]
    pub wait_lock: bool,
    /// Only steps with one of these tags (and what they need); comma-separated
    #[arg(long, value_delimiter = ',', value_name = "TAG")]
    pub tags: Vec<String>,
    /// Only these steps and their ancestors; comma-separated or repeated
    #[arg(long, value_delimiter = ',', value_name = "ID")]
    pub only: Vec<String>,
    /// Most steps running at once (Postgres/Redis steps are bounded further by their
    /// target's pool)
    #[arg(long, default_value_t = DEFAULT_MAX_PARALLEL, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_parallel: u32,
    /// Output format
    #[arg(long, value_enum, default_value_t = RunFormatArg::Human)]
    pub format: RunFormatArg,
    /// Where to write the run record (default: $XDG_STATE_HOME/opsctl/runs/RUN_ID.jsonl)
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct HealthArgs {
    /// The runbook to run (default: health)
    #[arg(long, value_name = "NAME", default_value = crate::health::DEFAULT_RUNBOOK)]
    pub runbook: String,
    /// Only the steps tagged `quick` (and what they need)
    #[arg(long)]
    pub quick: bool,
    /// table: for people (default); json: one object; prometheus: text exposition format
    /// for node_exporter's textfile collector; junit: XML for CI
    #[arg(long, value_enum, default_value_t = HealthFormatArg::Table)]
    pub format: HealthFormatArg,
    /// Write the report to FILE (atomically: a temporary file renamed into place, as the
    /// textfile collector requires) instead of stdout
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Run again every DURATION (e.g. 30s, 5m) until Ctrl-C, marking what changed
    #[arg(long, value_name = "DURATION", value_parser = parse_watch)]
    pub watch: Option<std::time::Duration>,
    /// Most checks running at once, per environment
    #[arg(long, default_value_t = DEFAULT_MAX_PARALLEL, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_parallel: u32,
}

fn parse_watch(text: &str) -> Result<std::time::Duration, String> {
    let d = crate::model::duration::parse_duration(text)?;
    if d < std::time::Duration::from_secs(1) {
        return Err("at least 1s".to_string());
    }
    Ok(d)
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum TestFormatArg {
    Human,
    Github,
    Junit,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum HealthFormatArg {
    Table,
    Json,
    Prometheus,
    Junit,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum RunFormatArg {
    Human,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum ReportFormatArg {
    Human,
    Json,
    Markdown,
}

#[derive(Args, Debug)]
pub struct LintArgs {
    /// Files or directories (default: the config's runbook directories and the config)
    pub paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = LintFormatArg::Human)]
    pub format: LintFormatArg,
    /// Print every rule with its code and what it checks, then exit
    #[arg(long)]
    pub explain: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum LintFormatArg {
    Human,
    Json,
    Github,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum ShellArg {
    Bash,
    Zsh,
    Fish,
    #[value(name = "powershell")]
    PowerShell,
    Elvish,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum GraphFormatArg {
    Mermaid,
    Dot,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum RbacFormatArg {
    /// A ready-to-apply Role
    Yaml,
    /// {"rules": [...]}
    Json,
}

impl Cli {
    /// The validated invocation.
    pub fn into_invocation(self) -> Invocation {
        let global = Global {
            config: self.config,
            env: self.env,
            color: match self.color {
                ColorArg::Auto => ColorChoice::Auto,
                ColorArg::Always => ColorChoice::Always,
                ColorArg::Never => ColorChoice::Never,
            },
        };
        let run_options = |a: RunArgs| RunOptions {
            name: a.name.unwrap_or_default(),
            resume: a.resume,
            params: a.params,
            dry_run: a.dry_run,
            examples: a.examples,
            yes: a.yes,
            yes_manual: a.yes_manual,
            wait_lock: a.wait_lock,
            tags: a.tags.into_iter().filter(|t| !t.is_empty()).collect(),
            only: a.only,
            max_parallel: a.max_parallel as usize,
            format: match a.format {
                RunFormatArg::Human => RunFormat::Human,
                RunFormatArg::Json => RunFormat::Json,
            },
            record: a.record,
        };
        let command = match self.command {
            CliCommand::Run(a) => Command::Run(run_options(a)),
            CliCommand::Plan(a) => Command::Plan(run_options(a)),
            CliCommand::Health(a) => Command::Health(HealthOptions {
                runbook: a.runbook,
                quick: a.quick,
                format: match a.format {
                    HealthFormatArg::Table => HealthFormat::Table,
                    HealthFormatArg::Json => HealthFormat::Json,
                    HealthFormatArg::Prometheus => HealthFormat::Prometheus,
                    HealthFormatArg::Junit => HealthFormat::Junit,
                },
                output: a.output,
                watch: a.watch,
                max_parallel: a.max_parallel as usize,
            }),
            CliCommand::Lint(a) => Command::Lint {
                paths: a.paths,
                explain: a.explain,
                format: match a.format {
                    LintFormatArg::Human => LintFormat::Human,
                    LintFormatArg::Json => LintFormat::Json,
                    LintFormatArg::Github => LintFormat::Github,
                },
            },
            CliCommand::Report { record, format } => Command::Report {
                record,
                format: match format {
                    ReportFormatArg::Human => ReportFormat::Human,
                    ReportFormatArg::Json => ReportFormat::Json,
                    ReportFormatArg::Markdown => ReportFormat::Markdown,
                },
            },
            CliCommand::Test {
                paths,
                format,
                from_record,
            } => Command::Test {
                paths,
                format: match format {
                    TestFormatArg::Human => TestFormat::Human,
                    TestFormatArg::Github => TestFormat::Github,
                    TestFormatArg::Junit => TestFormat::Junit,
                },
                from_record,
            },
            CliCommand::History {
                runbook,
                limit,
                format,
            } => Command::History {
                runbook,
                limit,
                format: match format {
                    RunFormatArg::Human => RunFormat::Human,
                    RunFormatArg::Json => RunFormat::Json,
                },
            },
            CliCommand::List => Command::List,
            CliCommand::Show { name } => Command::Show { name },
            CliCommand::Graph { name, format } => Command::Graph {
                name,
                format: match format {
                    GraphFormatArg::Mermaid => GraphFormat::Mermaid,
                    GraphFormatArg::Dot => GraphFormat::Dot,
                },
            },
            CliCommand::Actions { name, markdown } => Command::Actions { name, markdown },
            CliCommand::Schema => Command::Schema,
            CliCommand::Completions { shell } => Command::Completions(match shell {
                ShellArg::Bash => Shell::Bash,
                ShellArg::Zsh => Shell::Zsh,
                ShellArg::Fish => Shell::Fish,
                ShellArg::PowerShell => Shell::PowerShell,
                ShellArg::Elvish => Shell::Elvish,
            }),
            CliCommand::Man => Command::Man,
            CliCommand::Rbac { runbooks, format } => Command::Rbac {
                runbooks,
                format: match format {
                    RbacFormatArg::Yaml => crate::invocation::RbacFormat::Yaml,
                    RbacFormatArg::Json => crate::invocation::RbacFormat::Json,
                },
            },
        };
        Invocation { global, command }
    }
}

/// The subcommand named on a command line that did not parse: the first argument that is
/// neither an option nor the value of a global option that takes one.
pub fn subcommand_of(args: impl IntoIterator<Item = String>) -> Option<String> {
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" | "--env" | "--color" => {
                args.next();
            }
            a if a.starts_with('-') => {}
            a => return Some(a.to_string()),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_subcommand_of_a_bad_command_line() {
        let of = |line: &str| subcommand_of(line.split_whitespace().map(str::to_string));
        assert_eq!(
            of("--config x.yaml --env=a health --bogus"),
            Some("health".into())
        );
        assert_eq!(of("--env prod run x"), Some("run".into()));
        assert_eq!(of("--color never"), None);
    }

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
