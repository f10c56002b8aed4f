//! The xxfunc HTTP gateway.
