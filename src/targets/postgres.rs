//! Placeholder until the pooled Postgres client lands (same API).
use crate::actions::ActionError;
use crate::redact::Redactor;
pub struct PgPool;
pub struct QueryResult {
    pub rows: Vec<serde_json::Map<String, serde_json::Value>>,
    pub row_count: u64,
}
impl PgPool {
    pub fn new(
        _name: &str,
        _url: &str,
        _size: usize,
        _ca: Option<&std::path::Path>,
        _r: Redactor,
    ) -> Result<PgPool, ActionError> {
        Ok(PgPool)
    }
    pub async fn query(
        &self,
        _sql: &str,
        _p: &[serde_json::Value],
        _m: bool,
        _t: std::time::Duration,
    ) -> Result<QueryResult, ActionError> {
        Err(ActionError::Unsupported("postgres: not yet".into()))
    }
}
