//! The xxfunc runner core.
