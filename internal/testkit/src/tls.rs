//! TLS and TCP servers on loopback with rcgen certificates (to be written).
