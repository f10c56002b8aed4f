//! Module validation: the one check every upload passes before it is stored (through the
//! gateway or offline) and that `cargo xxfunc build` runs before printing its hash.

use wasmparser::{Encoding, ExternalKind, Parser, Payload, TypeRef, Validator, WasmFeatures};

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
    /// The binary is malformed or fails validation.
    #[error("invalid WebAssembly at byte offset {offset}: {message}")]
    Invalid {
        /// Byte offset of the problem.
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
}

/// Validates `bytes` as an xxfunc function module.
///
/// # Errors
/// [`ValidationError`] naming the first problem found.
pub fn validate_module(bytes: &[u8]) -> Result<ModuleInfo, ValidationError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(ValidationError::NotWasm);
    }
    let mut validator = Validator::new_with_features(WasmFeatures::default());
    let mut info = ModuleInfo {
        imports: Vec::new(),
        exports: Vec::new(),
    };
    let mut start_is_func = false;
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
            Payload::ImportSection(reader) => {
                for import in reader.clone() {
                    let import = import.map_err(invalid)?;
                    if !ALLOWED_IMPORT_MODULES.contains(&import.module) {
                        return Err(ValidationError::ForbiddenImport {
                            module: import.module.to_string(),
                            name: import.name.to_string(),
                        });
                    }
                    let _: &TypeRef = &import.ty;
                    info.imports
                        .push((import.module.to_string(), import.name.to_string()));
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader.clone() {
                    let export = export.map_err(invalid)?;
                    if export.name == "_start" && export.kind == ExternalKind::Func {
                        start_is_func = true;
                    }
                    info.exports.push(export.name.to_string());
                }
            }
            _ => {}
        }
        validator.payload(&payload).map_err(invalid)?;
    }
    if !start_is_func {
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
