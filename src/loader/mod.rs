//! YAML tree → runbook model. Walks the tree by hand so every key and value keeps its
//! location, unknown keys get suggestions, and all problems of a file are reported in
//! one pass.

mod fields;
mod runbook;

pub use fields::{Cx, Fields, unknown_key};
pub use runbook::{STEP_KEYS, TOP_KEYS, load_runbook};
