//! The event envelope shared by the runner and the guest SDK.
