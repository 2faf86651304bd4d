//! Shared helpers for upwatch benchmarks (the criterion benches live in `benches/`).
