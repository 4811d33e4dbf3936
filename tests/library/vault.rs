//! Staged outages of the vault system (see docs/seed-coverage.md).
