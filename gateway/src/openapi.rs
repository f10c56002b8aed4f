//! The OpenAPI 3 description of the API, kept in `openapi.json` next to this file.

/// The document served at `GET /v1/openapi.json`.
pub(crate) const OPENAPI_JSON: &str = include_str!("openapi.json");
