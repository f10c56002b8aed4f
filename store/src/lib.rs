//! Content-addressed module storage (filled in by the store work).
