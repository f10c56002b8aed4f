//! The xxfunc guest SDK.
