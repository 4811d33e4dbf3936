//! Placeholder until the pooled Redis client lands (same API).
use crate::actions::ActionError;
use crate::redact::Redactor;
pub struct RedisPool;
impl RedisPool {
    pub fn new(
        _name: &str,
        _url: &str,
        _size: usize,
        _ca: Option<&std::path::Path>,
        _r: Redactor,
    ) -> Result<RedisPool, ActionError> {
        Ok(RedisPool)
    }
    pub async fn command(
        &self,
        _argv: &[String],
        _m: bool,
    ) -> Result<serde_json::Value, ActionError> {
        Err(ActionError::Unsupported("redis: not yet".into()))
    }
}
