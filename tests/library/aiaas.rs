//! Staged outages of the aiaas system (see docs/seed-coverage.md).
