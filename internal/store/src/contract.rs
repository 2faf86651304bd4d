//! (being written) store contract.
