//! One short run of the load benchmark (embedded mode), to keep the binary working; the real
//! runs are made by hand and recorded in BENCHMARKS.md.

use std::path::PathBuf;
use std::process::Command;

/// The `upwatch` binary cargo built next to this test's binaries (`cargo test --workspace`
/// builds it for the `upwatch` package's own tests).
fn upwatch_binary() -> PathBuf {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_upwatch-bench"));
    let bin = bench.with_file_name("upwatch");
    if !bin.is_file() {
        // `cargo test -p upwatch-bench` alone does not build it.
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "upwatch"])
            .status()
            .expect("cargo");
        assert!(status.success(), "cargo build -p upwatch failed");
    }
    assert!(bin.is_file(), "no upwatch binary at {}", bin.display());
    bin
}

#[test]
fn a_short_embedded_run_reports_sane_numbers() {
    let out = Command::new(env!("CARGO_BIN_EXE_upwatch-bench"))
        .args([
            "--monitors",
            "200",
            "--interval",
            "2s",
            "--warmup",
            "3s",
            "--duration",
            "5s",
            "--api-duration",
            "1s",
            "--api-connections",
            "2",
            "--mode",
            "embedded",
            "--no-write",
            "--json",
            "--upwatch-bin",
        ])
        .arg(upwatch_binary())
        .output()
        .expect("the bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the bench failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('['))
        .expect("a JSON report");
    let reports: serde_json::Value = serde_json::from_str(json).unwrap();
    let r = &reports[0];
    let n = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{k} in {r}"));
    assert!(n("checks_per_second") > 0.0, "{r}");
    assert!(n("window_produced") > 0.0, "{r}");
    assert!(n("total_produced") > 0.0, "{r}");
    assert_eq!(n("total_stored"), n("total_produced"), "{r}");
    assert_eq!(n("rows_in_database"), n("total_stored"), "{r}");
    assert!(n("cpu_ms_per_check") > 0.0, "{r}");
    assert!(r["lag_p99_s"].as_f64().is_some(), "{r}");
    assert!(r["store_delay_p99_s"].as_f64().is_some(), "{r}");
    assert!(r["peak_rss"][0][1].as_u64().unwrap() > 0, "{r}");
    assert!(r["api"][0]["requests"].as_u64().unwrap() > 0, "{r}");
}
