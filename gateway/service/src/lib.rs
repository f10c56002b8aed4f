//! The xxfunc service layer: every business rule of deploying and operating functions,
//! once, for every transport.
//!
//! A [`Service`] wraps the registry ([`xxfunc_registry::Registry`]: names, versions, pins,
//! desired states, the change feed) and the module store ([`xxfunc_store::ModuleStore`]:
//! module bytes). The gateway's HTTP handlers are thin adapters over it (parse,
//! authorise, call, map the error), and `cargo xxfunc --offline` calls the same service
//! in-process, so the two cannot drift.
//!
//! It owns: module validation ([`validate_module`]), upload and deploy, bind, selector
//! resolution (a name, a hash or a unique prefix, by the registry's one rule), start /
//! stop / pin / unpin, list / show / logs, and garbage collection with its grace period
//! and its lock. It never speaks HTTP, never parses command lines, never maps errors to
//! status or exit codes, and never runs wasm.
//!
//! # Rules
//!
//! - A module is validated before it is stored; a rejected upload stores nothing.
//! - A bind, or a start or pin by hash, that names a module the store does not hold
//!   changes nothing ([`ServiceError::ModuleNotStored`]).
//! - Garbage collection never removes a module between another operation's check and its
//!   registry write (a lock shared by clones of one [`Service`]), nor a module uploaded
//!   through a service within [`ServiceOptions::upload_grace`]. The grace period is read
//!   from upload records kept in the store itself, so it holds across processes: an
//!   offline `cargo xxfunc gc` spares a module a gateway received a minute ago.
//! - Registry calls run on blocking threads, never on the async worker calling the
//!   service.
//!
//! # Key types
//!
//! - [`Service`], [`ServiceOptions`] ([`DEFAULT_UPLOAD_GRACE`]: ten minutes).
//! - [`ServiceError`]: each variant names its object; transports map it.
//! - [`BindOutcome`]: a bind's answer plus whether it made a new version.
//! - [`validate_module`], [`ModuleInfo`], [`ValidationError`].
//!
//! # Example
//!
//! ```
//! use xxfunc_api::{DesiredState, StartFrom};
//! use xxfunc_registry::Registry;
//! use xxfunc_service::{Service, ServiceError, ServiceOptions};
//! use xxfunc_store::ModuleStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let service = Service::new(
//!     Registry::open(dir.path().join("registry"))?,
//!     ModuleStore::open("memory://")?,
//!     ServiceOptions::default(),
//! );
//! let wasm = wat::parse_str(r#"(module (func (export "_start")))"#)?;
//! let deployed = service.deploy(&"hello".parse()?, wasm).await?;
//! assert_eq!(deployed.bind.version, 1);
//!
//! // By name, or by a unique prefix of the hash.
//! let prefix = deployed.upload.hash.short(8);
//! let view = service.start(&prefix, StartFrom::Head).await?;
//! assert_eq!(view.desired, DesiredState::Started);
//!
//! // Invalid modules are refused before anything is stored.
//! let err = service.upload(b"not wasm".to_vec()).await.unwrap_err();
//! assert!(matches!(err, ServiceError::InvalidModule(_)));
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "test-corpus")]
pub mod corpus;
mod error;
mod functions;
mod modules;
mod service;
mod sinks;
mod validate;

pub use error::{Result, ServiceError};
pub use functions::BindOutcome;
pub use service::{DEFAULT_UPLOAD_GRACE, Service, ServiceOptions};
pub use validate::{ALLOWED_IMPORT_MODULES, ModuleInfo, ValidationError, validate_module};
