//! Process exit codes of `cargo xxfunc`.
//!
//! Scripts may rely on these numbers: they are part of the CLI's interface and
//! never change meaning. Each known failure has its own code; anything else is
//! [`FAILURE`]. The message on stderr always says what failed and what to do.

/// Success.
pub const OK: i32 = 0;

/// An unexpected failure (I/O error, a server error, a bug).
pub const FAILURE: i32 = 1;

/// The command line is wrong: unknown flag, missing argument, invalid value
/// (also used by clap itself).
pub const USAGE: i32 = 2;

/// The current directory (or `--manifest-path`) is not inside a Cargo package.
pub const NOT_IN_CRATE: i32 = 3;

/// The Cargo package is not an xxfunc function: it does not depend on the
/// `xxfunc` SDK or has no binary target.
pub const NOT_A_FUNCTION: i32 = 4;

/// The `wasm32-wasip1` Rust target is missing and could not be installed.
pub const TARGET_MISSING: i32 = 5;

/// `cargo build` of the function failed (compile errors are above on stderr).
pub const BUILD_FAILED: i32 = 6;

/// The built or given module is not a valid xxfunc module (no `_start`,
/// forbidden import, not WebAssembly), locally or as judged by the gateway.
pub const INVALID_MODULE: i32 = 7;

/// The gateway could not be reached (connection refused, DNS, timeout).
pub const GATEWAY_UNREACHABLE: i32 = 8;

/// The gateway refused the request: no token or a wrong token.
pub const AUTH: i32 = 9;

/// No function, module or hash matches what was asked for.
pub const NOT_FOUND: i32 = 10;

/// A hash prefix matches more than one module; the candidates are listed.
pub const AMBIGUOUS: i32 = 11;

/// The request conflicts with the current state (e.g. the local data
/// directory is locked by a running `cargo xxfunc dev`).
pub const CONFLICT: i32 = 12;

/// `cargo xxfunc test`: an invocation failed or an output differs from its golden file.
pub const TEST_FAILED: i32 = 13;

/// Every code with its name (the table in `--help` and the README mirrors it).
#[cfg(test)]
pub const ALL: &[(i32, &str)] = &[
    (OK, "ok"),
    (FAILURE, "failure"),
    (USAGE, "usage"),
    (NOT_IN_CRATE, "not_in_crate"),
    (NOT_A_FUNCTION, "not_a_function"),
    (TARGET_MISSING, "target_missing"),
    (BUILD_FAILED, "build_failed"),
    (INVALID_MODULE, "invalid_module"),
    (GATEWAY_UNREACHABLE, "gateway_unreachable"),
    (AUTH, "auth"),
    (NOT_FOUND, "not_found"),
    (AMBIGUOUS, "ambiguous"),
    (CONFLICT, "conflict"),
    (TEST_FAILED, "test_failed"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        // These numbers are an interface: changing one breaks users' scripts.
        assert_eq!(
            ALL,
            &[
                (0, "ok"),
                (1, "failure"),
                (2, "usage"),
                (3, "not_in_crate"),
                (4, "not_a_function"),
                (5, "target_missing"),
                (6, "build_failed"),
                (7, "invalid_module"),
                (8, "gateway_unreachable"),
                (9, "auth"),
                (10, "not_found"),
                (11, "ambiguous"),
                (12, "conflict"),
                (13, "test_failed"),
            ]
        );
    }

    #[test]
    fn codes_are_distinct_and_fit_a_byte() {
        let mut seen = std::collections::HashSet::new();
        for (code, name) in ALL {
            assert!(
                (0..=125).contains(code),
                "{name} = {code} is not a portable exit code"
            );
            assert!(seen.insert(*code), "{name} reuses code {code}");
        }
    }
}
