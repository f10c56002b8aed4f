//! The SDK's error type.

/// Result alias of the SDK; `main` functions usually return `xxfunc::Result<()>`.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// What went wrong inside a function.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The envelope or one of its parts did not decode.
    #[error("bad event envelope: {0}")]
    Abi(#[from] xxfunc_abi::AbiError),
    /// A record could not be serialized to JSON.
    #[error("cannot serialize output record: {0}")]
    Json(#[from] serde_json::Error),
    /// Writing to stdout or stderr failed (e.g. the runner's output cap was reached).
    #[error("cannot write output: {0}")]
    Io(#[from] std::io::Error),
    /// A chain-state read failed (see [`crate::StateError`]).
    #[error("state read failed: {0}")]
    State(#[from] crate::state::StateError),
    /// A message from the function itself.
    #[error("{0}")]
    Message(String),
}

impl Error {
    /// An error carrying `message`, for functions that have no error type of their own.
    pub fn msg(message: impl core::fmt::Display) -> Self {
        Self::Message(message.to_string())
    }
}
