//! opsctl's integration tests: one binary, a module per topic.

mod support;

mod cli;
mod config;
mod dry_run;
mod kube;
mod lint_rules;
mod loader_fuzz;
mod run_db;
mod run_http;
mod schema;
mod shipped;
mod targets;
