//! Procedural macros of the xxfunc SDK.
