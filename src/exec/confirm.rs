//! What the executor asks a person (contract section 5), as a trait: the executor says
//! what needs a go and gets a [`Decision`]; `report::prompt` asks on the terminal.

use futures::future::BoxFuture;

pub use super::events::Confirmer;

/// The answer to a question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Run it (`by` says who decided).
    Yes {
        by: Confirmer,
    },
    No,
    Abort,
    /// Nobody can be asked; the reason says why.
    Unavailable(String),
}

/// A mutating step waiting for a go.
pub struct ConfirmRequest {
    pub path: String,
    pub title: String,
    pub description: String,
    pub args: String,
}

/// A manual step waiting for a person.
pub struct ManualRequest {
    pub path: String,
    pub title: String,
    pub instructions: String,
}

pub trait Interact: Send + Sync {
    fn confirm<'a>(&'a self, req: ConfirmRequest) -> BoxFuture<'a, Decision>;
    fn manual<'a>(&'a self, req: ManualRequest) -> BoxFuture<'a, Decision>;
}

/// A live display that a prompt pauses: while paused it draws nothing and holds back
/// its lines, and the run goes on underneath (other steps keep running and reporting).
pub trait Pause: Send + Sync {
    fn pause(&self);
    fn resume(&self);
}
