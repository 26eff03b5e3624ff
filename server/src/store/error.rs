//! The storage error, independent of the backend.

/// A storage failure, whatever the backend. Its message never contains a token, a
/// cookie or a key: values travel as bound parameters or script arguments, never in text.
#[derive(Debug)]
pub(crate) enum StoreError {
    /// The store cannot be reached right now (connection refused or lost, timeout). The
    /// request may be retried later; nothing was decided.
    Unavailable(String),
    /// Any other failure of the backend.
    Backend(String),
    /// The stored data contradict what the server holds in memory (nothing was applied).
    Inconsistent(&'static str),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unavailable(e) => write!(f, "store unavailable: {e}"),
            Self::Backend(e) => write!(f, "store error: {e}"),
            Self::Inconsistent(what) => write!(f, "inconsistent state: {what}"),
        }
    }
}

pub(crate) type Result<T> = std::result::Result<T, StoreError>;
