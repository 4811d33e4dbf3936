//! Staged outages of the bentham system (see docs/seed-coverage.md).
