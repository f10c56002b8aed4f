//! Known failures and their exit codes.
//!
//! A [`Failure`] is an error the CLI understands: its message is complete (what
//! failed, on what, and what to do next) and it carries one of the
//! [`exit_codes`](crate::exit_codes). Anything else that reaches `main` exits
//! with [`FAILURE`](crate::exit_codes::FAILURE).

use std::fmt;

use crate::exit_codes;

/// An error with a stable exit code and a message that says what to do next.
#[derive(Debug)]
pub(crate) struct Failure {
    code: i32,
    message: String,
}

impl Failure {
    pub(crate) fn new(code: i32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn code(&self) -> i32 {
        self.code
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// Shorthand: an `anyhow::Error` holding a [`Failure`].
pub(crate) fn fail(code: i32, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Failure::new(code, message))
}

/// The exit code for an error: the first [`Failure`] in its chain, else
/// [`exit_codes::FAILURE`].
pub(crate) fn exit_code(err: &anyhow::Error) -> i32 {
    err.chain()
        .find_map(|cause| cause.downcast_ref::<Failure>().map(Failure::code))
        .unwrap_or(exit_codes::FAILURE)
}

/// Whether the error is a closed stdout (`cargo xxfunc list | head`), which is
/// not a failure.
pub(crate) fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use anyhow::Context;

    use super::*;

    #[test]
    fn code_survives_context() {
        let err = Err::<(), _>(fail(exit_codes::NOT_FOUND, "function \"x\" not found"))
            .context("stopping x")
            .unwrap_err();
        assert_eq!(exit_code(&err), exit_codes::NOT_FOUND);
        assert_eq!(format!("{err:#}"), "stopping x: function \"x\" not found");
    }

    #[test]
    fn unknown_errors_are_failures() {
        let err = anyhow::anyhow!("boom");
        assert_eq!(exit_code(&err), exit_codes::FAILURE);
        assert!(!is_broken_pipe(&err));
        let pipe = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(is_broken_pipe(&pipe.context("writing")));
    }
}
