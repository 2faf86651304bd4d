//! upwatch's benchmarks.
//!
//! The criterion micro-benchmarks of the pure core live in `benches/core.rs`
//! (`cargo bench -p upwatch-bench`). The end-to-end load benchmark of whole deployments is
//! tracked in the benchmarks issue.
