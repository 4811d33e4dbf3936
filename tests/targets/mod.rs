//! The Postgres and Redis pools, driven directly against the real test servers
//! (`scripts/test-services.sh`): types, read-only enforcement, errors, pool bounds.

mod common;
mod postgres;
mod postgres_pool;
mod redis;
mod redis_pool;
