//! (being written) SQLite implementation.
