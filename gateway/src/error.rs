//! [`ApiError`]: every way a request can fail, and the one place that maps
//! each to an HTTP status and a stable error code.

use actix_web::{HttpResponse, ResponseError, http::StatusCode};
use xxfunc_api::{ErrorBody, ErrorDetail, InvalidName, ModuleHash, codes};
use xxfunc_registry::RegistryError;
use xxfunc_service::ServiceError;
use xxfunc_store::StoreError;

/// Result alias for request handlers.
pub type ApiResult<T> = Result<T, ApiError>;

/// What to do about a module the store does not have.
const UPLOAD_FIRST: &str = "upload it first with `cargo xxfunc deploy` or POST /v1/modules";

/// Everything a request can fail with. Rendered as `{"error":{"code","message"}}`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No bearer token on a mutating request.
    #[error(
        "this request changes state and needs `Authorization: Bearer <token>`; pass --token or set XXFUNC_TOKEN"
    )]
    Unauthorized,
    /// A bearer token that does not match.
    #[error("the bearer token is wrong; check --token / XXFUNC_TOKEN against the gateway's token")]
    Forbidden,
    /// A malformed body or parameter.
    #[error("{0}")]
    BadRequest(String),
    /// Not a valid function name.
    #[error(transparent)]
    InvalidName(#[from] InvalidName),
    /// Wrong `Content-Type`.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Body larger than the route's limit.
    #[error("the request body exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// No such route.
    #[error("no route {method} {path}; see GET /v1/openapi.json for the API")]
    NoRoute {
        /// Request method.
        method: String,
        /// Request path.
        path: String,
    },
    /// The service refused or failed the operation (boxed: it may carry a store
    /// error, which is large).
    #[error(transparent)]
    Service(Box<ServiceError>),
    /// A worker thread failed.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// Status and stable code.
    fn status_code_and_code(&self) -> (StatusCode, &'static str) {
        use StatusCode as S;
        match self {
            Self::Unauthorized => (S::UNAUTHORIZED, codes::UNAUTHORIZED),
            Self::Forbidden => (S::FORBIDDEN, codes::FORBIDDEN),
            Self::BadRequest(_) => (S::BAD_REQUEST, codes::BAD_REQUEST),
            Self::InvalidName(_) => (S::BAD_REQUEST, codes::INVALID_NAME),
            Self::UnsupportedMediaType(_) => {
                (S::UNSUPPORTED_MEDIA_TYPE, codes::UNSUPPORTED_MEDIA_TYPE)
            }
            Self::TooLarge { .. } => (S::PAYLOAD_TOO_LARGE, codes::TOO_LARGE),
            Self::NoRoute { .. } => (S::NOT_FOUND, codes::NOT_FOUND),
            Self::Service(e) => match e.as_ref() {
                ServiceError::InvalidSelector(_) => (S::BAD_REQUEST, codes::INVALID_NAME),
                ServiceError::InvalidHash(_) => (S::BAD_REQUEST, codes::INVALID_HASH),
                ServiceError::InvalidModule(_) => (S::UNPROCESSABLE_ENTITY, codes::INVALID_MODULE),
                ServiceError::ModuleNotStored(_) | ServiceError::ModuleNotFound { .. } => {
                    (S::NOT_FOUND, codes::NOT_FOUND)
                }
                ServiceError::Ambiguous { .. } => (S::CONFLICT, codes::AMBIGUOUS_HASH),
                ServiceError::Registry(e) => match e {
                    RegistryError::FunctionNotFound { .. }
                    | RegistryError::NameNotFound { .. }
                    | RegistryError::PrefixNotFound { .. } => (S::NOT_FOUND, codes::NOT_FOUND),
                    RegistryError::Ambiguous { .. } => (S::CONFLICT, codes::AMBIGUOUS_HASH),
                    RegistryError::AfterBeyondHead { .. } => {
                        (S::BAD_REQUEST, codes::AFTER_BEYOND_HEAD)
                    }
                    RegistryError::SinkNotFound { .. } => (S::NOT_FOUND, codes::NOT_FOUND),
                    RegistryError::SinkNameTaken { .. } => (S::CONFLICT, codes::CONFLICT),
                    RegistryError::InvalidRunner { .. }
                    | RegistryError::InvalidSink { .. }
                    | RegistryError::InvalidOutcomes { .. }
                    | RegistryError::InvalidQuery { .. } => (S::BAD_REQUEST, codes::BAD_REQUEST),
                    RegistryError::Db { .. } => (S::SERVICE_UNAVAILABLE, codes::BACKEND),
                    _ => (S::INTERNAL_SERVER_ERROR, codes::INTERNAL),
                },
                ServiceError::Store(e) => match e {
                    StoreError::NotFound { .. } | StoreError::PrefixNotFound { .. } => {
                        (S::NOT_FOUND, codes::NOT_FOUND)
                    }
                    StoreError::Ambiguous { .. } => (S::CONFLICT, codes::AMBIGUOUS_HASH),
                    StoreError::InvalidHash { .. } => (S::BAD_REQUEST, codes::INVALID_HASH),
                    StoreError::TooLarge { .. } => (S::PAYLOAD_TOO_LARGE, codes::TOO_LARGE),
                    StoreError::Corrupt { .. } => (S::INTERNAL_SERVER_ERROR, codes::CORRUPT),
                    StoreError::Input { .. } => (S::BAD_REQUEST, codes::BAD_REQUEST),
                    StoreError::Backend { .. } => (S::SERVICE_UNAVAILABLE, codes::BACKEND),
                    _ => (S::INTERNAL_SERVER_ERROR, codes::INTERNAL),
                },
                // A blocking worker that panicked, and variants added later.
                _ => (S::INTERNAL_SERVER_ERROR, codes::INTERNAL),
            },
            Self::Internal(_) => (S::INTERNAL_SERVER_ERROR, codes::INTERNAL),
        }
    }

    fn candidates(&self) -> Vec<ModuleHash> {
        let Self::Service(e) = self else {
            return Vec::new();
        };
        match e.as_ref() {
            ServiceError::Ambiguous { candidates, .. }
            | ServiceError::Registry(RegistryError::Ambiguous { candidates, .. })
            | ServiceError::Store(StoreError::Ambiguous { candidates, .. }) => candidates.clone(),
            _ => Vec::new(),
        }
    }

    /// The message: what failed, plus what to do about it.
    fn message(&self) -> String {
        let Self::Service(e) = self else {
            return self.to_string();
        };
        match e.as_ref() {
            ServiceError::ModuleNotStored(_)
            | ServiceError::ModuleNotFound { .. }
            | ServiceError::Store(
                StoreError::PrefixNotFound { .. } | StoreError::NotFound { .. },
            ) => {
                format!("{self}; {UPLOAD_FIRST}")
            }
            ServiceError::Ambiguous { .. } | ServiceError::Store(StoreError::Ambiguous { .. }) => {
                format!("{self}; type more hex digits")
            }
            ServiceError::Store(StoreError::Backend { .. }) => format!(
                "{self}; the module store is unreachable or failing, check the --store backend and retry"
            ),
            ServiceError::Store(StoreError::Corrupt { .. }) => {
                format!("{self}; re-upload the module to repair the store")
            }
            ServiceError::Worker(_) => format!("internal error: {self}"),
            _ => self.to_string(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status_code_and_code().0
    }

    fn error_response(&self) -> HttpResponse {
        let (status, code) = self.status_code_and_code();
        if status.is_server_error() {
            tracing::warn!(code, error = %self, "request failed");
        }
        HttpResponse::build(status).json(ErrorBody {
            error: ErrorDetail {
                code: code.to_string(),
                message: self.message(),
                candidates: self.candidates(),
            },
        })
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        Self::Service(Box::new(e))
    }
}

/// A registry read outside the service (the `/metrics` gauges) fails as the service's
/// registry errors do.
impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        ServiceError::Registry(e).into()
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        Self::Internal(format!("a worker thread failed: {e}"))
    }
}
