//! The runbook library against staged outages of each seed system: real PostgreSQL and
//! Redis, a local HTTP service shaped like the system's API, the test Kubernetes API server.

mod aiaas;
mod bentham;
mod tensafe;
mod tensafe_docker;
mod vault;
