//! opsctl's integration tests: one binary, a module per topic.

mod support;

mod cli;
mod config;
mod demo;
mod dry_run;
mod exec_admin;
mod finally;
mod foreach;
mod health;
mod history;
mod kube;
mod library;
mod lint_rules;
mod loader_fuzz;
mod lock;
mod manifests;
mod params;
mod report;
mod resume;
mod run_db;
mod run_http;
mod runbook_tests;
mod safety;
mod scheduler;
mod schema;
mod seed_coverage;
mod shipped;
mod sql_safety;
mod targets;
