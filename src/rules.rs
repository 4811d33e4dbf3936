//! The catalogue of lint rules: every finding opsctl reports carries one of these codes.
//!
//! `docs/lint-rules.md` is generated from this table (`opsctl lint --explain` prints it too).

/// A lint rule. Codes are stable; names are the kebab-case spelling shown beside them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    YamlSyntax,
    YamlLimits,
    DuplicateKey,
    UnknownKey,
    MissingKey,
    InvalidType,
    InvalidValue,
    NameMismatch,
    DuplicateStepId,
    UnknownNeed,
    Cycle,
    ActionCount,
    UnknownArgument,
    MissingArgument,
    InvalidArgument,
    ExpressionSyntax,
    UndeclaredParam,
    UnknownStep,
    Race,
    UnknownOutput,
    UnknownName,
    UnknownFilter,
    ParamExample,
    UnknownRunbook,
    RunbookCycle,
    UnknownTarget,
    ConfirmIgnored,
    SecretTransformed,
    SecretOnCommandLine,
    ShellInterpolation,
    SqlInterpolation,
    DuplicateRunbook,
    HealthMutates,
    CleanupReadsOutputs,
    Io,
}

impl Rule {
    pub const ALL: &'static [Rule] = &[
        Rule::YamlSyntax,
        Rule::YamlLimits,
        Rule::DuplicateKey,
        Rule::UnknownKey,
        Rule::MissingKey,
        Rule::InvalidType,
        Rule::InvalidValue,
        Rule::NameMismatch,
        Rule::DuplicateStepId,
        Rule::UnknownNeed,
        Rule::Cycle,
        Rule::ActionCount,
        Rule::UnknownArgument,
        Rule::MissingArgument,
        Rule::InvalidArgument,
        Rule::ExpressionSyntax,
        Rule::UndeclaredParam,
        Rule::UnknownStep,
        Rule::Race,
        Rule::UnknownOutput,
        Rule::UnknownName,
        Rule::UnknownFilter,
        Rule::ParamExample,
        Rule::UnknownRunbook,
        Rule::RunbookCycle,
        Rule::UnknownTarget,
        Rule::ConfirmIgnored,
        Rule::SecretTransformed,
        Rule::SecretOnCommandLine,
        Rule::ShellInterpolation,
        Rule::SqlInterpolation,
        Rule::DuplicateRunbook,
        Rule::HealthMutates,
        Rule::CleanupReadsOutputs,
        Rule::Io,
    ];

    /// (code, name, what it checks, why it matters)
    const fn info(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            Rule::YamlSyntax => (
                "Y001",
                "yaml-syntax",
                "The file is not well-formed YAML.",
                "Nothing in a file that does not parse can be trusted; opsctl refuses it whole.",
            ),
            Rule::YamlLimits => (
                "Y002",
                "yaml-limits",
                "The file is too large, nested too deeply, expands aliases beyond the budget, holds more than one YAML document, or uses `!!binary` values.",
                "A runbook is one small YAML document; a huge or alias-bomb file is a mistake or an attack and must not hang CI, and a second document would be silently ignored.",
            ),
            Rule::DuplicateKey => (
                "Y003",
                "duplicate-key",
                "A mapping repeats a key.",
                "YAML parsers silently keep one of the two values; which one differs between tools.",
            ),
            Rule::UnknownKey => (
                "S001",
                "unknown-key",
                "A key that the runbook or config format does not define.",
                "A typo such as `nedds:` would otherwise be ignored and change what runs.",
            ),
            Rule::MissingKey => (
                "S002",
                "missing-key",
                "A required key (`name`, `title`, `steps`, a step's `id`) is absent.",
                "The runbook cannot be named, shown or run without it.",
            ),
            Rule::InvalidType => (
                "S003",
                "invalid-type",
                "A value has the wrong type (a list where a string is expected, ...).",
                "The value would be misread at run time, in the middle of an incident.",
            ),
            Rule::InvalidValue => (
                "S004",
                "invalid-value",
                "A value is out of its domain: a bad duration, severity, id, regex or enum value.",
                "Caught now, not at 3 a.m. when the step is reached.",
            ),
            Rule::NameMismatch => (
                "R001",
                "name-mismatch",
                "The runbook's `name` differs from its file stem.",
                "`opsctl run NAME` finds runbooks by file name; a mismatch makes one of the two names lie.",
            ),
            Rule::DuplicateStepId => (
                "R002",
                "duplicate-step-id",
                "Two steps share an id.",
                "`needs` and `steps.X` references would be ambiguous.",
            ),
            Rule::UnknownNeed => (
                "R003",
                "unknown-need",
                "`needs` names a step that does not exist.",
                "The dependent step could never start.",
            ),
            Rule::Cycle => (
                "R004",
                "cycle",
                "Steps depend on each other in a loop.",
                "No step of the loop could ever start.",
            ),
            Rule::ActionCount => (
                "A001",
                "action-count",
                "A step has no action key or more than one.",
                "A step does exactly one thing; two actions would make its outputs ambiguous.",
            ),
            Rule::UnknownArgument => (
                "A002",
                "unknown-argument",
                "An action argument that the action does not take.",
                "A misspelt argument (`methd: POST`) would be ignored and the default used.",
            ),
            Rule::MissingArgument => (
                "A003",
                "missing-argument",
                "A required action argument is absent, or neither of two alternatives is given.",
                "The action cannot run without it.",
            ),
            Rule::InvalidArgument => (
                "A004",
                "invalid-argument",
                "An action argument has the wrong type or a value outside its allowed set.",
                "It would fail when the step runs, in the middle of an incident.",
            ),
            Rule::ExpressionSyntax => (
                "X001",
                "expression-syntax",
                "An expression or `${{ }}` template does not parse.",
                "It would fail when evaluated, possibly after mutations already happened.",
            ),
            Rule::UndeclaredParam => (
                "X002",
                "undeclared-param",
                "An expression reads `params.X` but the runbook declares no param X.",
                "It would be undefined at run time.",
            ),
            Rule::UnknownStep => (
                "X003",
                "unknown-step",
                "An expression reads `steps.X` for a step that does not exist (or indexes `steps` dynamically).",
                "It would be undefined at run time.",
            ),
            Rule::Race => (
                "X004",
                "race",
                "An expression in step S reads `steps.X`, but X is not an ancestor of S through `needs`.",
                "S may run before or concurrently with X: the value would depend on timing.",
            ),
            Rule::UnknownOutput => (
                "X005",
                "unknown-output",
                "An expression reads an output that the step's action (and its `capture`) does not produce.",
                "It would be undefined at run time.",
            ),
            Rule::UnknownName => (
                "X006",
                "unknown-name",
                "An expression reads a name that is not in scope.",
                "Only `params`, `vars`, `steps`, `run` (and, in assertions, `outputs` and the step's outputs) exist.",
            ),
            Rule::UnknownFilter => (
                "X007",
                "unknown-filter",
                "An expression uses a filter, test or function that does not exist, or an invalid `jq` program.",
                "It would fail when evaluated.",
            ),
            Rule::ParamExample => (
                "P001",
                "param-example",
                "A required param has no `example`, or its example/default does not match its `pattern`.",
                "Docs and `--dry-run --examples` need an example; a default that fails its own pattern can never run.",
            ),
            Rule::UnknownRunbook => (
                "N001",
                "unknown-runbook",
                "A `runbook` action names a runbook that cannot be found.",
                "The nested run would fail at run time.",
            ),
            Rule::RunbookCycle => (
                "N002",
                "runbook-cycle",
                "Runbooks call each other in a loop through `runbook` actions.",
                "The run would recurse forever.",
            ),
            Rule::UnknownTarget => (
                "C001",
                "unknown-target",
                "A step names a target that the config does not define in any environment.",
                "The step would fail with a missing target at run time.",
            ),
            Rule::ConfirmIgnored => (
                "W001",
                "confirm-ignored",
                "`confirm: false` on a mutating step.",
                "opsctl always asks before a mutation; the setting is ignored.",
            ),
            Rule::SecretTransformed => (
                "X008",
                "secret-transformed",
                "An expression does more with a secret output (`secret.generate`'s `value`) than pass it on as it is: a filter, an operation, a slice.",
                "opsctl masks a secret by its exact text; `value | upper` or `value[:8]` would print a form of it that no mask matches. Pass secrets on unchanged.",
            ),
            Rule::SecretOnCommandLine => (
                "X009",
                "secret-on-command-line",
                "A secret output (`secret.generate`'s `value`) is written into the `command` of `exec` or `k8s.exec`.",
                "A command line is readable by every user of the machine (`ps`, `/proc/PID/cmdline`) and, for `k8s.exec`, lands in the API server's audit log: the seeds' `aws secretsmanager update-secret --secret-string '{\"password\": …}'` leaks the new password that way. Pass the secret through `env:` or `stdin:`; opsctl also refuses at run time a command line that holds any secret it knows.",
            ),
            Rule::ShellInterpolation => (
                "I001",
                "shell-interpolation",
                "A `shell:` script contains `${{ }}` expressions.",
                "Inserted values are never parsed as shell code: opsctl passes each as an environment variable (`$OPSCTL_VALUE_1`, ...) and the script refers to it in a form quoted for its place (unquoted, in double or in single quotes). `command:` (an argv list, no shell) is simpler still.",
            ),
            Rule::SqlInterpolation => (
                "I002",
                "sql-interpolation",
                "A `postgres` query contains `${{ }}` expressions.",
                "Values pasted into SQL text can change the statement (SQL injection); pass them as `params` and refer to them as `$1`, `$2`, ...",
            ),
            Rule::DuplicateRunbook => (
                "N003",
                "duplicate-runbook",
                "Two runbook files have the same name (file stem) in the searched directories.",
                "`opsctl run NAME` could only pick one of them; which one would depend on the directory order.",
            ),
            Rule::HealthMutates => (
                "H001",
                "health-mutates",
                "A health runbook (named `health` or tagged `health`) has a step that mutates, asks a person, or calls a runbook that does.",
                "`opsctl health` runs unattended, from cron or a CronJob, every hour: it must only look. A restart or a question in it would either never run or run without anyone deciding.",
            ),
            Rule::CleanupReadsOutputs => (
                "F001",
                "cleanup-reads-outputs",
                "A clean-up step (`always: true` or under `finally:`) reads `steps.X.outputs` of a step that may not have produced them, without its `when` checking `steps.X.status`.",
                "Clean-up runs after failures and Ctrl-C too, when the step it reads may have failed, been skipped or cancelled: its outputs are missing and the clean-up errors exactly when it is needed. Guard it: `when: steps.X.status == 'ok'`.",
            ),
            Rule::Io => (
                "E001",
                "io",
                "A file or directory could not be read.",
                "Nothing can be checked in a file that cannot be read.",
            ),
        }
    }

    pub const fn code(self) -> &'static str {
        self.info().0
    }

    pub const fn name(self) -> &'static str {
        self.info().1
    }

    pub const fn what(self) -> &'static str {
        self.info().2
    }

    pub const fn why(self) -> &'static str {
        self.info().3
    }
}

/// `docs/lint-rules.md`, generated from the table above (a test keeps the file in sync).
pub fn markdown() -> String {
    let mut out = String::from(
        "# Lint rules\n\nEvery finding of `opsctl lint` carries one of these codes, a location \
         (file:line:column), a one-line message and, where one exists, a suggestion. \
         Errors fail `lint` (exit 1) and stop `run`/`plan` before anything starts (exit 2); \
         warnings are reported and do not fail.\n\nThis file is generated from `src/rules.rs`; \
         `opsctl lint --explain` prints the same.\n\n| Code | Rule | What it checks | Why it matters |\n|---|---|---|---|\n",
    );
    for r in Rule::ALL {
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {} |\n",
            r.code(),
            r.name(),
            r.what(),
            r.why()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_and_names_are_unique() {
        let codes: HashSet<_> = Rule::ALL.iter().map(|r| r.code()).collect();
        let names: HashSet<_> = Rule::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(codes.len(), Rule::ALL.len());
        assert_eq!(names.len(), Rule::ALL.len());
    }
}
