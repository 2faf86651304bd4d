//! What a run measured, as a table, and its place in `BENCHMARKS.md`.
//!
//! The load benchmark owns the part of `BENCHMARKS.md` between [`BEGIN`] and [`END`]. That
//! part is a list of `###` sections; the ones the benchmark writes carry a key comment
//! (`<!-- load-benchmark:section embedded -->`) and are replaced by the next run of the same
//! kind, so that embedded and distributed results both stay. Sections without a key (written
//! by hand) are kept as they are.

use super::apiload::LoadResult;
use super::procfs::Machine;
use super::sites::CheckKind;

pub const BEGIN: &str = "<!-- load-benchmark:begin -->";
pub const END: &str = "<!-- load-benchmark:end -->";

/// What one run measured.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RunReport {
    pub mode: String,
    /// The check type of every monitor of the run (`http` unless `--check-types` says).
    pub check_type: String,
    /// `UPWATCH_CHECK_MAX_PER_HOST` of the run, when the bench set it (`--max-per-host`).
    pub max_per_host: Option<u32>,
    pub monitors: usize,
    pub interval_seconds: u32,
    pub expected_checks_per_second: f64,
    pub create_seconds: f64,
    pub window_seconds: f64,
    pub checks_per_second: f64,
    pub lag_p50_s: Option<f64>,
    pub lag_p99_s: Option<f64>,
    pub lag_max_bound_s: Option<f64>,
    /// p99 schedule lag of the first and of the last slice of the window (growing lag).
    pub lag_p99_first_slice_s: Option<f64>,
    pub lag_p99_last_slice_s: Option<f64>,
    pub store_delay_p50_s: Option<f64>,
    pub store_delay_p99_s: Option<f64>,
    /// Results produced (checks) and stored during the window.
    pub window_produced: u64,
    pub window_stored: u64,
    /// Checks of the window whose outcome was `up`.
    pub window_up: u64,
    /// Requests, connections, handshakes or queries the loopback server saw during the window
    /// (none for ICMP, which the kernel answers).
    pub window_served: Option<u64>,
    /// The ICMP socket kind `upwatch serve` said it uses (`raw` or `datagram`).
    pub icmp_socket: Option<String>,
    /// Jobs skipped during the window: stale, overlapping, or slots the scheduler missed.
    pub window_skipped: u64,
    /// Whole run, after the drain: results the workers published, the logger stored, and the
    /// rows in the database.
    pub total_produced: u64,
    pub total_stored: u64,
    pub rows_in_database: u64,
    /// CPU time of all upwatch processes per check, milliseconds.
    pub cpu_ms_per_check: f64,
    /// CPU use during the window, percent of one core, per upwatch process.
    pub cpu_percent: Vec<(String, f64)>,
    /// CPU use of the bench process itself (target server) during the window.
    pub bench_cpu_percent: f64,
    /// CPU use of the database, cache and broker servers during the window.
    pub others_cpu_percent: Vec<(String, f64)>,
    /// Busy share of all cores during the window.
    pub machine_busy_percent: f64,
    /// VmHWM per process, bytes.
    pub peak_rss: Vec<(String, u64)>,
    /// (RSS of the scheduler with the monitors - RSS with none) / monitors.
    pub scheduler_bytes_per_monitor: Option<f64>,
    pub api: Vec<LoadResult>,
    /// The same load against the limit server (`load::limit`): `limit /status` (the JSON from
    /// memory) and, distributed, `limit /redis` (one Redis HGET per request).
    pub api_limits: Vec<LoadResult>,
    /// wrk's fresh-connection (`Connection: close`) requests/s against the same target server
    /// after the run: the machine's limit for checks.
    pub fresh_connection_limit: Option<f64>,
    /// CPU use during the API load, percent of one core: upwatch's API process, the bench
    /// (load generator) and others.
    pub api_cpu_percent: Vec<(String, f64)>,
    pub sustained: bool,
    pub verdict: String,
}

impl RunReport {
    /// Whether the schedule lag grew over the window: the p99 of its last 10 s is above
    /// twice that of its first 10 s, and above 250 ms.
    pub fn lag_growing(&self) -> bool {
        match (self.lag_p99_first_slice_s, self.lag_p99_last_slice_s) {
            (Some(first), Some(last)) => last > (2.0 * first).max(0.25),
            _ => false,
        }
    }

    /// Whether every result produced was stored (whole run, after the drain).
    pub fn nothing_lost(&self) -> bool {
        self.total_produced == self.total_stored && self.total_stored == self.rows_in_database
    }
}

fn ms(seconds: Option<f64>) -> String {
    match seconds {
        None => "-".into(),
        Some(s) if s.is_infinite() => "> 90 s".into(),
        Some(s) if s >= 10.0 => format!("{s:.1} s"),
        Some(s) => format!("{:.1} ms", s * 1000.0),
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / 1024.0 / 1024.0)
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}

fn shares(list: &[(String, f64)]) -> String {
    list.iter()
        .map(|(name, pct)| format!("{name} {pct:.0}%"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The Markdown table of one run, with the targets of issue 5.
pub fn run_table(r: &RunReport) -> String {
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let embedded = r.mode == "embedded";
    let mut row = |a: &str, b: String, c: String| rows.push((a.to_string(), b, c));
    row(
        "checks/s achieved (expected N/I)",
        format!(
            "{:.0} of {:.0} ({:.1}%)",
            r.checks_per_second,
            r.expected_checks_per_second,
            100.0 * r.checks_per_second / r.expected_checks_per_second.max(1e-9)
        ),
        if embedded {
            String::new()
        } else {
            format!("≥ 2,000: {}", mark(r.checks_per_second >= 2000.0))
        },
    );
    row(
        "schedule lag p50 / p99 / max",
        format!(
            "{} / {} / ≤ {}",
            ms(r.lag_p50_s),
            ms(r.lag_p99_s),
            ms(r.lag_max_bound_s)
        ),
        if embedded {
            format!("p99 < 1 s: {}", mark(r.lag_p99_s.is_some_and(|p| p < 1.0)))
        } else {
            String::new()
        },
    );
    row(
        "schedule lag p99, first / last 10 s of the window",
        format!(
            "{} / {}",
            ms(r.lag_p99_first_slice_s),
            ms(r.lag_p99_last_slice_s)
        ),
        format!("not growing: {}", mark(!r.lag_growing())),
    );
    row(
        "due-to-stored latency p50 / p99",
        format!("{} / {}", ms(r.store_delay_p50_s), ms(r.store_delay_p99_s)),
        if embedded {
            String::new()
        } else {
            format!(
                "p99 < 2 s: {}",
                mark(r.store_delay_p99_s.is_some_and(|p| p < 2.0))
            )
        },
    );
    row(
        "results stored / produced (window)",
        format!("{} / {}", r.window_stored, r.window_produced),
        String::new(),
    );
    row(
        "results stored / produced / rows (whole run, after drain)",
        format!(
            "{} / {} / {}",
            r.total_stored, r.total_produced, r.rows_in_database
        ),
        format!("equal: {}", mark(r.nothing_lost())),
    );
    row(
        "jobs skipped (stale, overlapping, missed slots)",
        r.window_skipped.to_string(),
        format!("0: {}", mark(r.window_skipped == 0)),
    );
    row(
        "CPU per check, all upwatch processes",
        format!(
            "{:.3} ms ({:.2} CPU s per 1,000 checks)",
            r.cpu_ms_per_check, r.cpu_ms_per_check
        ),
        format!(
            "≤ 0.25 ms: {} (aim 0.15)",
            mark(r.cpu_ms_per_check > 0.0 && r.cpu_ms_per_check <= 0.25)
        ),
    );
    row(
        "CPU during the window (% of one core)",
        format!(
            "{}; bench (target server) {:.0}%; {}machine busy {:.0}% of {} cores",
            shares(&r.cpu_percent),
            r.bench_cpu_percent,
            if r.others_cpu_percent.is_empty() {
                String::new()
            } else {
                format!("{}; ", shares(&r.others_cpu_percent))
            },
            r.machine_busy_percent,
            std::thread::available_parallelism().map_or(1, |n| n.get()),
        ),
        String::new(),
    );
    let total_rss: u64 = r.peak_rss.iter().map(|(_, b)| b).sum();
    row(
        "peak RSS (VmHWM)",
        if r.peak_rss.len() == 1 {
            mib(total_rss)
        } else {
            format!(
                "{} in all: {}",
                mib(total_rss),
                r.peak_rss
                    .iter()
                    .map(|(n, b)| format!("{n} {}", mib(*b)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        if embedded {
            format!("< 1 GiB: {}", mark(total_rss < 1 << 30))
        } else {
            String::new()
        },
    );
    if let Some(per) = r.scheduler_bytes_per_monitor {
        row(
            "scheduler memory per monitor",
            format!("{per:.0} bytes"),
            format!("< 2 KiB: {}", mark(per < 2048.0)),
        );
    }
    for load in &r.api {
        let one = load.path.ends_with("/status") && load.path.contains("/sites/");
        row(
            &format!("`GET {}` ({} connections)", load.path, load.connections),
            format!(
                "{:.0} req/s, p50 {:.2} ms, p99 {:.2} ms{}",
                load.requests_per_second,
                load.p50_ms,
                load.p99_ms,
                if load.errors > 0 {
                    format!(", {} errors", load.errors)
                } else {
                    String::new()
                }
            ),
            if one {
                format!(
                    "≥ 50,000 req/s, p99 < 5 ms: {}",
                    mark(load.requests_per_second >= 50_000.0 && load.p99_ms < 5.0)
                )
            } else {
                String::new()
            },
        );
    }
    for limit in &r.api_limits {
        let (what, target) = if limit.path.ends_with("/redis") {
            (
                "a bare axum handler doing one Redis `HGET` per request",
                0.80,
            )
        } else {
            (
                "a bare axum handler answering the same JSON from memory",
                0.90,
            )
        };
        let status = r
            .api
            .iter()
            .find(|l| l.path.ends_with("/status") && l.path.contains("/sites/"));
        let applies = (r.mode == "distributed") == limit.path.ends_with("/redis");
        row(
            &format!("limit: {what} ({} connections)", limit.connections),
            format!(
                "{:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
                limit.requests_per_second, limit.p50_ms, limit.p99_ms
            ),
            match status {
                Some(s) if applies && limit.requests_per_second > 0.0 => {
                    let share = s.requests_per_second / limit.requests_per_second;
                    format!(
                        "`/status` at {:.0}% of it; ≥ {:.0}%, p99 < 5 ms: {}",
                        100.0 * share,
                        100.0 * target,
                        mark(share >= target && s.p99_ms < 5.0)
                    )
                }
                _ => String::new(),
            },
        );
    }
    if !r.api_cpu_percent.is_empty() {
        row(
            "CPU during the API load (% of one core)",
            shares(&r.api_cpu_percent),
            String::new(),
        );
    }
    if let Some(limit) = r.fresh_connection_limit {
        let share = r.checks_per_second / limit;
        row(
            "limit: fresh connections to the same target (wrk, 64 connections, `Connection: close`)",
            format!(
                "{limit:.0} req/s; upwatch's checks/s are {:.0}% of it",
                100.0 * share
            ),
            // The target (≥ 40%) is of the highest sustained rate: `--find-max` states it.
            String::new(),
        );
    }
    row(
        "monitors created through `POST /api/v1/sites/bulk`",
        format!("{} in {:.1} s", r.monitors, r.create_seconds),
        String::new(),
    );
    let mut out = String::from("| figure | measured | target |\n|---|---|---|\n");
    for (a, b, c) in rows {
        out.push_str(&format!("| {a} | {b} | {c} |\n"));
    }
    out
}

/// `value` as a multiple of `reference`, "met" when at most ten times ("same order as HTTP").
fn same_order(value: f64, reference: f64, reference_name: &str) -> String {
    if reference <= 0.0 {
        return format!("no {reference_name} figure");
    }
    let ratio = value / reference;
    format!("{ratio:.2}× {reference_name}: {}", mark(ratio <= 10.0))
}

/// The table of a run per check type (`--check-types`): one column per type, each figure
/// beside its target. The reference is the HTTP run (or the first when there is none).
pub fn types_table(runs: &[RunReport]) -> String {
    let Some(reference) = runs
        .iter()
        .find(|r| r.check_type == "http")
        .or_else(|| runs.first())
    else {
        return String::new();
    };
    let kind = |r: &RunReport| <CheckKind as clap::ValueEnum>::from_str(&r.check_type, true).ok();
    let reference_name = reference.check_type.to_ascii_uppercase();
    let mut rows: Vec<(String, String, Vec<String>)> = Vec::new();
    let mut row = |figure: &str, target: String, cell: &dyn Fn(&RunReport) -> String| {
        rows.push((figure.to_string(), target, runs.iter().map(cell).collect()));
    };
    row("server checked", String::new(), &|r| {
        kind(r).map_or_else(String::new, |k| k.target_description().to_string())
    });
    row("one check", String::new(), &|r| {
        let what = kind(r).map_or("", |k| k.what_a_check_does());
        match &r.icmp_socket {
            Some(socket) if r.check_type == "icmp" => format!("{what}, over a {socket} socket"),
            _ => what.to_string(),
        }
    });
    row(
        "checks/s achieved (expected N/I)",
        format!(
            "N/I = {:.0}, at least 97% of it",
            reference.expected_checks_per_second
        ),
        &|r| {
            format!(
                "{:.0} of {:.0} ({:.1}%): {}",
                r.checks_per_second,
                r.expected_checks_per_second,
                100.0 * r.checks_per_second / r.expected_checks_per_second.max(1e-9),
                mark(r.checks_per_second >= 0.97 * r.expected_checks_per_second)
            )
        },
    );
    row(
        "checks up (window)",
        "all (the servers always answer well)".into(),
        &|r| {
            format!(
                "{} of {}: {}",
                r.window_up,
                r.window_produced,
                mark(r.window_produced > 0 && r.window_up == r.window_produced)
            )
        },
    );
    row(
        "seen by the server (window)",
        "one per check".into(),
        &|r| match (r.window_served, r.check_type.as_str()) {
            (Some(n), "http") => format!("{n} requests"),
            (Some(n), "tcp") => format!("{n} connections"),
            (Some(n), "tls") => format!("{n} handshakes"),
            (Some(n), "dns") => format!("{n} queries"),
            (Some(n), _) => n.to_string(),
            (None, _) => "- (the kernel answers)".into(),
        },
    );
    row(
        "CPU per check, `upwatch serve`",
        format!(
            "same order as {reference_name}: at most 10× its {:.3} ms",
            reference.cpu_ms_per_check
        ),
        &|r| {
            if std::ptr::eq(r, reference) {
                format!("{:.3} ms (reference)", r.cpu_ms_per_check)
            } else {
                format!(
                    "{:.3} ms ({})",
                    r.cpu_ms_per_check,
                    same_order(
                        r.cpu_ms_per_check,
                        reference.cpu_ms_per_check,
                        &reference_name
                    )
                )
            }
        },
    );
    row(
        "schedule lag p50 / p99",
        format!("p99 < 1 s ({reference_name}: {})", ms(reference.lag_p99_s)),
        &|r| {
            format!(
                "{} / {}: {}",
                ms(r.lag_p50_s),
                ms(r.lag_p99_s),
                mark(r.lag_p99_s.is_some_and(|p| p < 1.0))
            )
        },
    );
    row(
        "schedule lag p99, first / last 10 s of the window",
        "not growing".into(),
        &|r| {
            format!(
                "{} / {}: {}",
                ms(r.lag_p99_first_slice_s),
                ms(r.lag_p99_last_slice_s),
                mark(!r.lag_growing())
            )
        },
    );
    row("due-to-stored latency p50 / p99", String::new(), &|r| {
        format!("{} / {}", ms(r.store_delay_p50_s), ms(r.store_delay_p99_s))
    });
    row(
        "jobs skipped (stale, overlapping, missed slots)",
        "0".into(),
        &|r| format!("{}: {}", r.window_skipped, mark(r.window_skipped == 0)),
    );
    row(
        "results stored / produced / rows (whole run, after drain)",
        "equal".into(),
        &|r| {
            format!(
                "{} / {} / {}: {}",
                r.total_stored,
                r.total_produced,
                r.rows_in_database,
                mark(r.nothing_lost())
            )
        },
    );
    row(
        "every due check made",
        "yes (all of the above met)".into(),
        &|r| {
            if r.sustained {
                "yes".into()
            } else {
                format!("**no**: {}", r.verdict)
            }
        },
    );
    row(
        "CPU during the window (% of one core)",
        String::new(),
        &|r| {
            format!(
                "{}; bench (server) {:.0}%; {}machine busy {:.0}% of {} cores",
                shares(&r.cpu_percent),
                r.bench_cpu_percent,
                if r.others_cpu_percent.is_empty() {
                    String::new()
                } else {
                    format!("{}; ", shares(&r.others_cpu_percent))
                },
                r.machine_busy_percent,
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            )
        },
    );
    row("peak RSS (VmHWM)", String::new(), &|r| {
        mib(r.peak_rss.iter().map(|(_, b)| b).sum())
    });
    let mut out = String::from("| figure | target |");
    for r in runs {
        out.push_str(&format!(" {} |", r.check_type.to_ascii_uppercase()));
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---|".repeat(runs.len()));
    out.push('\n');
    for (figure, target, cells) in rows {
        out.push_str(&format!(
            "| {figure} | {target} | {} |\n",
            cells.join(" | ")
        ));
    }
    out
}

/// The table of a search for the highest sustainable rate.
pub fn max_table(runs: &[RunReport]) -> String {
    let mut out = String::from(
        "| expected checks/s (monitors × interval) | achieved | lag p99 (first / last 10 s) | due-to-stored p99 | skipped | stored = produced | CPU per check | sustained |\n|---|---|---|---|---|---|---|---|\n",
    );
    for r in runs {
        out.push_str(&format!(
            "| {:.0} ({} × {} s) | {:.0} | {} ({} / {}) | {} | {} | {} | {:.3} ms | {} |\n",
            r.expected_checks_per_second,
            r.monitors,
            r.interval_seconds,
            r.checks_per_second,
            ms(r.lag_p99_s),
            ms(r.lag_p99_first_slice_s),
            ms(r.lag_p99_last_slice_s),
            ms(r.store_delay_p99_s),
            r.window_skipped,
            if r.nothing_lost() { "yes" } else { "**no**" },
            r.cpu_ms_per_check,
            if r.sustained {
                "yes".to_string()
            } else {
                format!("no: {}", r.verdict)
            }
        ));
    }
    out
}

/// A section the benchmark writes: heading, key comment, how it was measured, the table.
pub fn section(key: &str, heading: &str, machine: &Machine, command: &str, body: &str) -> String {
    format!(
        "### {heading}\n<!-- load-benchmark:section {key} -->\n\n\
         Measured {} on {}.\n\n```sh\n{command}\n```\n\n{body}",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        machine.line(),
    )
}

/// `doc` with the section `key` replaced by `new_section` (or added), between the markers
/// (which are added at the end when missing). Everything outside the markers, and every other
/// section, is kept.
pub fn update(doc: &str, key: &str, new_section: &str) -> String {
    let (before, inner, after) = match (doc.find(BEGIN), doc.find(END)) {
        (Some(b), Some(e)) if b < e => (
            doc[..b].to_string(),
            doc[b + BEGIN.len()..e].to_string(),
            doc[e + END.len()..].to_string(),
        ),
        _ => {
            let mut before = doc.trim_end().to_string();
            before.push_str("\n\n## End-to-end load benchmark\n\n");
            (before, String::new(), "\n".to_string())
        }
    };
    // Split the inner part into a preamble and `###` sections.
    let mut preamble = String::new();
    let mut sections: Vec<String> = Vec::new();
    for line in inner.trim_matches('\n').lines() {
        if line.starts_with("### ") {
            sections.push(String::new());
        }
        match sections.last_mut() {
            Some(s) => {
                s.push_str(line);
                s.push('\n');
            }
            None => {
                preamble.push_str(line);
                preamble.push('\n');
            }
        }
    }
    let tag = format!("<!-- load-benchmark:section {key} -->");
    let new_section = format!("{}\n", new_section.trim_end());
    match sections.iter_mut().find(|s| s.contains(&tag)) {
        Some(s) => *s = new_section,
        None => sections.push(new_section),
    }
    let mut out = before;
    out.push_str(BEGIN);
    out.push('\n');
    if !preamble.trim().is_empty() {
        out.push_str(preamble.trim_end());
        out.push_str("\n\n");
    }
    out.push_str(
        &sections
            .iter()
            .map(|s| s.trim_end().to_string())
            .collect::<Vec<_>>()
            .join("\n\n"),
    );
    out.push('\n');
    out.push_str(END);
    out.push_str(&after);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_types_table_puts_each_type_beside_the_http_reference() {
        let run = |check_type: &str, cpu: f64, rate: f64| RunReport {
            mode: "embedded".into(),
            check_type: check_type.into(),
            expected_checks_per_second: 600.0,
            checks_per_second: rate,
            window_produced: 100,
            window_up: 100,
            cpu_ms_per_check: cpu,
            lag_p99_s: Some(0.004),
            sustained: rate >= 582.0,
            verdict: if rate >= 582.0 {
                String::new()
            } else {
                "below 97% of the expected rate".into()
            },
            ..RunReport::default()
        };
        let table = types_table(&[
            run("http", 0.4, 600.0),
            run("tcp", 0.2, 600.0),
            run("icmp", 5.0, 40.0),
        ]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "| figure | target | HTTP | TCP | ICMP |");
        assert_eq!(lines[1], "|---|---|---|---|---|");
        let cpu = lines.iter().find(|l| l.contains("CPU per check")).unwrap();
        assert!(cpu.contains("0.400 ms (reference)"), "{cpu}");
        assert!(cpu.contains("0.200 ms (0.50× HTTP: met)"), "{cpu}");
        assert!(cpu.contains("5.000 ms (12.50× HTTP: **missed**)"), "{cpu}");
        let made = lines
            .iter()
            .find(|l| l.contains("every due check"))
            .unwrap();
        assert!(
            made.ends_with("| yes | yes | **no**: below 97% of the expected rate |"),
            "{made}"
        );
        for line in &lines {
            assert_eq!(line.matches('|').count(), 6, "{line}");
        }
    }

    #[test]
    fn adds_markers_then_replaces_only_its_own_section() {
        let doc = "# Benchmarks\n\nSomeone else's text.\n";
        let a = update(
            doc,
            "embedded",
            "### Embedded\n<!-- load-benchmark:section embedded -->\none\n",
        );
        assert!(a.starts_with(doc.trim_end()));
        assert!(a.contains(BEGIN) && a.contains(END));
        let b = update(
            &a,
            "distributed",
            "### Distributed\n<!-- load-benchmark:section distributed -->\ntwo\n",
        );
        let c = update(
            &b,
            "embedded",
            "### Embedded\n<!-- load-benchmark:section embedded -->\nthree\n",
        );
        assert!(c.contains("three") && c.contains("two") && !c.contains("one\n"));
        assert_eq!(c.matches(BEGIN).count(), 1);
        // A hand-written section and text after the markers survive.
        let d = c.replace(
            END,
            "### Notes\nby hand\n<!-- load-benchmark:end -->\nafter\n",
        );
        let e = update(
            &d,
            "distributed",
            "### Distributed\n<!-- load-benchmark:section distributed -->\nfour\n",
        );
        assert!(e.contains("by hand") && e.contains("four") && e.trim_end().ends_with("after"));
        assert!(e.find("three").unwrap() < e.find("four").unwrap());
    }
}
