//! Request and response types of the xxfunc HTTP API and a typed client.
