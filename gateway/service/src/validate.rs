//! Module validation: the one check every upload passes before it is stored (through the
//! gateway or offline) and that `cargo xxfunc build` runs before printing its hash.
//!
//! Admission is execution: a module is accepted only if the runner's engine can compile,
//! link and start it. Every function body is validated with the engine's own WebAssembly
//! proposals ([`xxfunc_primitives::admission::wasm_features`], the set the runner
//! configures wasmtime with, checked by the same `wasmparser` wasmtime uses), the module
//! must fit a pooled instance slot (one memory, one table of at most
//! [`MAX_TABLE_ELEMENTS`] elements), import only functions, and export `_start: [] -> []`.
//! A module that needs a proposal the engine does not run is rejected naming it.

use wasmparser::{
    Encoding, ExternalKind, FuncType, FuncValidatorAllocations, Parser, Payload, TypeRef, ValType,
    ValidPayload, Validator, WasmFeatures,
};
use xxfunc_primitives::admission::{
    self, MAX_TABLE_ELEMENTS, MAX_TABLES, PROPOSALS, proposal_flags,
};

/// Import namespaces a function may use.
pub const ALLOWED_IMPORT_MODULES: &[&str] = &["wasi_snapshot_preview1", "xxfunc"];

/// What validation learned about a module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleInfo {
    /// `(module, name)` of every import.
    pub imports: Vec<(String, String)>,
    /// Names of every export.
    pub exports: Vec<String>,
}

/// Why a module was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// Not a WebAssembly binary at all.
    #[error("not a WebAssembly module: the file does not start with the \\0asm magic")]
    NotWasm,
    /// A component, not a core module.
    #[error("this is a WebAssembly component; xxfunc runs core modules built for wasm32-wasip1")]
    Component,
    /// The binary is malformed or fails validation outside function bodies.
    #[error("invalid WebAssembly at byte offset {offset}: {message}")]
    Invalid {
        /// Byte offset of the problem.
        offset: usize,
        /// wasmparser's message.
        message: String,
    },
    /// A function body is malformed or does not validate (an illegal opcode, a type
    /// mismatch, a call to a function that does not exist, too many locals, ...).
    #[error("invalid WebAssembly in function {index} at byte offset {offset}: {message}")]
    InvalidFunction {
        /// Index of the function (imports first).
        index: u32,
        /// Byte offset of the problem.
        offset: usize,
        /// wasmparser's message.
        message: String,
    },
    /// The module needs a WebAssembly proposal the runner's engine does not run.
    #[error(
        "the module uses the WebAssembly {proposal} proposal ({what}), which the xxfunc \
         runner does not run (byte offset {offset}: {message})"
    )]
    Unsupported {
        /// The proposal's name (see [`xxfunc_primitives::admission::PROPOSALS`]).
        proposal: &'static str,
        /// What the proposal is for.
        what: &'static str,
        /// Byte offset of the first use.
        offset: usize,
        /// wasmparser's message.
        message: String,
    },
    /// No `_start` function export.
    #[error(
        "the module exports no `_start` function; build it as a WASI command \
         (a `bin` crate with `fn main`, target wasm32-wasip1)"
    )]
    NoStart,
    /// `_start` takes parameters or returns results.
    #[error(
        "the module's `_start` has type {ty}; a WASI command's `_start` takes no \
         parameters and returns nothing ([] -> [])"
    )]
    StartSignature {
        /// The type `_start` has, as `[params] -> [results]`.
        ty: String,
    },
    /// An import outside the allowed namespaces.
    #[error(
        "the module imports `{module}.{name}`; functions may import only from \
         `wasi_snapshot_preview1` and `xxfunc`"
    )]
    ForbiddenImport {
        /// Import module.
        module: String,
        /// Import name.
        name: String,
    },
    /// An `xxfunc` import that is not one of the runner's host calls.
    #[error(
        "the module imports `xxfunc.{name}`, which the runner does not provide; the xxfunc \
         host calls are {known} (docs/abi.md section 8)"
    )]
    UnknownHostCall {
        /// Import name.
        name: String,
        /// The host calls there are, comma-separated.
        known: String,
    },
    /// An `xxfunc` import with another signature than the runner's host call.
    #[error(
        "the module imports `xxfunc.{name}` as `{found}`, but the runner's host call is \
         `{expected}` (docs/abi.md section 8)"
    )]
    HostCallSignature {
        /// Import name.
        name: String,
        /// The signature the module declares.
        found: String,
        /// The signature the runner provides.
        expected: String,
    },
    /// An import of something other than a function.
    #[error(
        "the module imports `{module}.{name}` as a {kind}; the runner provides only \
         functions (a module defines its own memory and table)"
    )]
    ImportKind {
        /// Import module.
        module: String,
        /// Import name.
        name: String,
        /// `memory`, `table`, `global` or `tag`.
        kind: &'static str,
    },
    /// More tables than a pooled instance slot holds.
    #[error(
        "the module defines {count} tables; the xxfunc runner gives each instance at most {max}"
    )]
    TooManyTables {
        /// Tables the module defines.
        count: u32,
        /// [`MAX_TABLES`].
        max: u32,
    },
    /// A table that starts larger than a pooled instance slot's table.
    #[error(
        "table {index} starts with {initial} elements; the xxfunc runner's tables hold at most {max}"
    )]
    TableTooLarge {
        /// Index of the table.
        index: u32,
        /// Its initial size.
        initial: u64,
        /// [`MAX_TABLE_ELEMENTS`].
        max: u64,
    },
}

/// Validates `bytes` as an xxfunc function module.
///
/// # Errors
/// [`ValidationError`] naming the first problem found.
pub fn validate_module(bytes: &[u8]) -> Result<ModuleInfo, ValidationError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(ValidationError::NotWasm);
    }
    let features = admission::wasm_features();
    let err = match check(bytes, features) {
        Ok(info) => return Ok(info),
        Err(err) => err,
    };
    let (ValidationError::Invalid { offset, message }
    | ValidationError::InvalidFunction {
        offset, message, ..
    }) = &err
    else {
        return Err(err);
    };
    match needed_proposal(bytes, features, *offset) {
        Some((proposal, what)) => Err(ValidationError::Unsupported {
            proposal,
            what,
            offset: *offset,
            message: message.clone(),
        }),
        None => Err(err),
    }
}

/// The disabled proposal whose use made validation fail at `offset`: the first one that,
/// enabled, lets validation pass or get past `offset`.
fn needed_proposal(
    bytes: &[u8],
    features: WasmFeatures,
    offset: usize,
) -> Option<(&'static str, &'static str)> {
    PROPOSALS
        .iter()
        .filter(|p| !p.enabled && p.name != "component-model")
        .find(|p| match check(bytes, features | proposal_flags(p)) {
            Ok(_) => true,
            Err(
                ValidationError::Invalid { offset: later, .. }
                | ValidationError::InvalidFunction { offset: later, .. },
            ) => later > offset,
            Err(_) => true,
        })
        .map(|p| (p.name, p.what))
}

/// An `xxfunc` import must be one of [`admission::HOST_CALLS`] with its signature:
/// `n` `i32` parameters and one `i32` result.
fn check_host_call(name: &str, ty: TypeRef, types: &[FuncType]) -> Result<(), ValidationError> {
    let Some(&(_, params)) = admission::HOST_CALLS.iter().find(|(n, _)| *n == name) else {
        return Err(ValidationError::UnknownHostCall {
            name: name.to_string(),
            known: admission::HOST_CALLS
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    let (TypeRef::Func(index) | TypeRef::FuncExact(index)) = ty else {
        // Not a function: reported as such by the caller's kind check.
        return Ok(());
    };
    let expected = FuncType::new(vec![ValType::I32; params], [ValType::I32]);
    let found = types.get(index as usize);
    if found != Some(&expected) {
        return Err(ValidationError::HostCallSignature {
            name: name.to_string(),
            found: found.map_or_else(|| format!("type {index}"), ToString::to_string),
            expected: expected.to_string(),
        });
    }
    Ok(())
}

fn check(bytes: &[u8], features: WasmFeatures) -> Result<ModuleInfo, ValidationError> {
    let mut validator = Validator::new_with_features(features);
    let mut info = ModuleInfo {
        imports: Vec::new(),
        exports: Vec::new(),
    };
    let mut start = None;
    let mut tables = 0u32;
    let mut types: Vec<FuncType> = Vec::new();
    let mut allocs = FuncValidatorAllocations::default();
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(invalid)?;
        if let Payload::Version {
            encoding: Encoding::Component,
            ..
        } = payload
        {
            return Err(ValidationError::Component);
        }
        match &payload {
            Payload::TypeSection(reader) => {
                for ty in reader.clone().into_iter_err_on_gc_types() {
                    types.push(ty.map_err(invalid)?);
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.clone().into_imports() {
                    let import = import.map_err(invalid)?;
                    if !ALLOWED_IMPORT_MODULES.contains(&import.module) {
                        return Err(ValidationError::ForbiddenImport {
                            module: import.module.to_string(),
                            name: import.name.to_string(),
                        });
                    }
                    let kind = match import.ty {
                        TypeRef::Func(_) | TypeRef::FuncExact(_) => None,
                        TypeRef::Table(_) => Some("table"),
                        TypeRef::Memory(_) => Some("memory"),
                        TypeRef::Global(_) => Some("global"),
                        TypeRef::Tag(_) => Some("tag"),
                    };
                    if let Some(kind) = kind {
                        return Err(ValidationError::ImportKind {
                            module: import.module.to_string(),
                            name: import.name.to_string(),
                            kind,
                        });
                    }
                    if import.module == admission::HOST_MODULE {
                        check_host_call(import.name, import.ty, &types)?;
                    }
                    info.imports
                        .push((import.module.to_string(), import.name.to_string()));
                }
            }
            Payload::TableSection(reader) => {
                for table in reader.clone() {
                    let table = table.map_err(invalid)?;
                    if table.ty.initial > MAX_TABLE_ELEMENTS {
                        return Err(ValidationError::TableTooLarge {
                            index: tables,
                            initial: table.ty.initial,
                            max: MAX_TABLE_ELEMENTS,
                        });
                    }
                    tables += 1;
                }
                if tables > MAX_TABLES {
                    return Err(ValidationError::TooManyTables {
                        count: tables,
                        max: MAX_TABLES,
                    });
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader.clone() {
                    let export = export.map_err(invalid)?;
                    if export.name == "_start"
                        && matches!(export.kind, ExternalKind::Func | ExternalKind::FuncExact)
                    {
                        start = Some(export.index);
                    }
                    info.exports.push(export.name.to_string());
                }
            }
            _ => {}
        }
        match validator.payload(&payload).map_err(invalid)? {
            ValidPayload::Func(func, body) => {
                let index = func.index;
                let mut func = func.into_validator(std::mem::take(&mut allocs));
                func.validate(&body)
                    .map_err(|e| ValidationError::InvalidFunction {
                        index,
                        offset: e.offset(),
                        message: e.message().to_string(),
                    })?;
                allocs = func.into_allocations();
            }
            ValidPayload::End(types) => {
                let Some(index) = start else {
                    return Err(ValidationError::NoStart);
                };
                let types = types.as_ref();
                let ty = types[types.core_function_at(index)].unwrap_func();
                if !ty.params().is_empty() || !ty.results().is_empty() {
                    let list = |tys: &[wasmparser::ValType]| {
                        tys.iter()
                            .map(|t| t.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    return Err(ValidationError::StartSignature {
                        ty: format!("[{}] -> [{}]", list(ty.params()), list(ty.results())),
                    });
                }
            }
            ValidPayload::Ok | ValidPayload::Parser(_) => {}
        }
    }
    if start.is_none() {
        return Err(ValidationError::NoStart);
    }
    Ok(info)
}

fn invalid(e: wasmparser::BinaryReaderError) -> ValidationError {
    ValidationError::Invalid {
        offset: e.offset(),
        message: e.message().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wat(src: &str) -> Vec<u8> {
        wat::parse_str(src).expect("test module parses")
    }

    #[test]
    fn accepts_a_wasi_command() {
        let bytes = wat(r#"(module
            (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
            (memory (export "memory") 1)
            (func (export "_start")))"#);
        let info = validate_module(&bytes).unwrap();
        assert_eq!(
            info.imports,
            [(
                "wasi_snapshot_preview1".to_string(),
                "proc_exit".to_string()
            )]
        );
        assert!(info.exports.contains(&"_start".to_string()));
    }

    #[test]
    fn every_corpus_case_gets_its_verdict() {
        use crate::corpus::{self, Expect};
        for case in corpus::all() {
            match (validate_module(&case.bytes), case.expect) {
                (Ok(_), Expect::Accept) => {}
                (Err(e), Expect::Reject(needle)) => {
                    let reason = e.to_string();
                    assert!(reason.contains(needle), "{}: {reason}", case.name);
                }
                (got, want) => panic!("{}: expected {want:?}, got {got:?}", case.name),
            }
        }
    }

    #[test]
    fn body_errors_name_the_function() {
        let bytes = wat(r#"(module
            (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
            (func (export "_start"))
            (func (result i32) (i64.const 1)))"#);
        let err = validate_module(&bytes).unwrap_err();
        assert!(
            matches!(err, ValidationError::InvalidFunction { index: 2, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn host_calls_are_checked_by_name_and_signature() {
        let every = wat(r#"(module
            (import "xxfunc" "state_account" (func (param i32 i32) (result i32)))
            (import "xxfunc" "state_storage" (func (param i32 i32 i32) (result i32)))
            (import "xxfunc" "state_code" (func (param i32 i32 i32 i32) (result i32)))
            (import "xxfunc" "state_call" (func (param i32 i32 i32 i32 i32) (result i32)))
            (memory (export "memory") 1)
            (func (export "_start")))"#);
        assert_eq!(validate_module(&every).unwrap().imports.len(), 4);

        let unknown = wat(r#"(module
            (import "xxfunc" "state_logs" (func (param i32) (result i32)))
            (func (export "_start")))"#);
        let err = validate_module(&unknown).unwrap_err();
        assert_eq!(
            err,
            ValidationError::UnknownHostCall {
                name: "state_logs".into(),
                known: "state_account, state_storage, state_code, state_call".into(),
            }
        );
        assert!(err.to_string().contains("xxfunc.state_logs"), "{err}");

        let wrong = wat(r#"(module
            (import "xxfunc" "state_storage" (func (param i32 i64 i32) (result i32)))
            (func (export "_start")))"#);
        let err = validate_module(&wrong).unwrap_err();
        assert_eq!(
            err,
            ValidationError::HostCallSignature {
                name: "state_storage".into(),
                found: "(func (param i32 i64 i32) (result i32))".into(),
                expected: "(func (param i32 i32 i32) (result i32))".into(),
            }
        );
        let no_result = wat(r#"(module
            (import "xxfunc" "state_account" (func (param i32 i32)))
            (func (export "_start")))"#);
        assert!(matches!(
            validate_module(&no_result),
            Err(ValidationError::HostCallSignature { .. })
        ));
    }

    #[test]
    fn unsupported_proposals_are_named() {
        let bytes = wat(r#"(module (memory 1 1 shared) (func (export "_start")))"#);
        match validate_module(&bytes).unwrap_err() {
            ValidationError::Unsupported { proposal, .. } => assert_eq!(proposal, "threads"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_bad_modules() {
        assert_eq!(
            validate_module(b"hello world").unwrap_err(),
            ValidationError::NotWasm
        );
        assert_eq!(
            validate_module(&wat(r#"(module (func (export "main")))"#)).unwrap_err(),
            ValidationError::NoStart
        );
        assert_eq!(
            validate_module(&wat(
                r#"(module (global (export "_start") i32 (i32.const 0)))"#
            ))
            .unwrap_err(),
            ValidationError::NoStart
        );
        assert_eq!(
            validate_module(&wat(
                r#"(module (import "env" "foo" (func)) (func (export "_start")))"#
            ))
            .unwrap_err(),
            ValidationError::ForbiddenImport {
                module: "env".into(),
                name: "foo".into()
            }
        );
        let mut truncated = wat(r#"(module (func (export "_start")))"#);
        truncated.truncate(truncated.len() - 3);
        assert!(matches!(
            validate_module(&truncated),
            Err(ValidationError::Invalid { .. })
        ));
    }
}
