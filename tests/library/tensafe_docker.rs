//! Staged outages of the tensafe_docker system (see docs/seed-coverage.md).
