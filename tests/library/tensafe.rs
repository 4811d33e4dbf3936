//! Staged outages of the tensafe system (see docs/seed-coverage.md).
