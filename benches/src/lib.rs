//! upwatch's benchmarks.
//!
//! - The criterion micro-benchmarks of the pure core live in `benches/core.rs`
//!   (`cargo bench -p upwatch-bench --bench core`).
//! - The end-to-end load benchmark of whole deployments is the `upwatch-bench` binary
//!   (`cargo run --release -p upwatch-bench -- --help`); its parts live in [`load`].

pub mod load;
