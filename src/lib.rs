//! opsctl: runbook-as-code for on-call engineers.
//!
//! The pipeline, in module order: source text ([`source`], [`yaml`]) → runbook model
//! ([`model`], [`loader`], [`config`], [`library`]) → step graph ([`graph`]) → checks
//! ([`lint`]) → scheduler and actions ([`exec`], [`actions`], [`targets`]) → events →
//! reports ([`report`]).

pub mod actions;
pub mod calls;
pub mod cli;
pub mod commands;
pub mod config;
pub mod diagnostic;
pub mod exec;
pub mod exit_code;
pub mod expr;
pub mod graph;
pub mod health;
pub mod invocation;
pub mod library;
pub mod lint;
pub mod loader;
pub mod model;
pub mod params;
pub mod prometheus;
pub mod rbac;
pub mod redact;
pub mod report;
pub mod rules;
pub mod schema;
pub mod source;
pub mod suggest;
pub mod targets;
pub mod yaml;
