//! Reading Prometheus text expositions: counters, gauges and histograms, and percentiles from
//! the difference of two histogram scrapes.

/// One scrape of a `/metrics` page: every sample, as series text and value.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    samples: Vec<(String, f64)>,
}

impl Scrape {
    /// Parses the text exposition (comment lines are skipped).
    pub fn parse(text: &str) -> Scrape {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                let value = match value.trim() {
                    "+Inf" => f64::INFINITY,
                    v => v.parse().ok()?,
                };
                Some((series.trim().to_string(), value))
            })
            .collect();
        Scrape { samples }
    }

    /// Several scrapes as one (the samples of all of them).
    pub fn merge(scrapes: &[Scrape]) -> Scrape {
        Scrape {
            samples: scrapes.iter().flat_map(|s| s.samples.clone()).collect(),
        }
    }

    /// The sum of every series of the metric `name` (all label values).
    pub fn sum(&self, name: &str) -> f64 {
        self.samples
            .iter()
            .filter(|(series, _)| metric_name(series) == name)
            .map(|(_, v)| v)
            .sum()
    }

    /// The sum of the series of the metric `name` whose label `key` is `value`.
    pub fn sum_where(&self, name: &str, key: &str, value: &str) -> f64 {
        self.samples
            .iter()
            .filter(|(series, _)| metric_name(series) == name && label(series, key) == Some(value))
            .map(|(_, v)| v)
            .sum()
    }

    /// The histogram `name` (without `_bucket`), buckets of every series added up.
    pub fn histogram(&self, name: &str) -> Histogram {
        let bucket = format!("{name}_bucket");
        let mut buckets: Vec<(f64, f64)> = Vec::new();
        for (series, value) in &self.samples {
            if metric_name(series) != bucket {
                continue;
            }
            let Some(le) = label(series, "le") else {
                continue;
            };
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                match le.parse::<f64>() {
                    Ok(le) => le,
                    Err(_) => continue,
                }
            };
            match buckets.iter_mut().find(|(b, _)| *b == le) {
                Some((_, count)) => *count += value,
                None => buckets.push((le, *value)),
            }
        }
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        Histogram { buckets }
    }
}

fn metric_name(series: &str) -> &str {
    series.split('{').next().unwrap_or(series)
}

fn label<'a>(series: &'a str, name: &str) -> Option<&'a str> {
    let labels = series.split_once('{')?.1.trim_end_matches('}');
    labels.split(',').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"'))
    })
}

/// A cumulative histogram: `(upper bound, observations at or below it)`, by bound.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    pub buckets: Vec<(f64, f64)>,
}

impl Histogram {
    /// The observations made between `earlier` and `self`.
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        Histogram {
            buckets: self
                .buckets
                .iter()
                .map(|(le, count)| {
                    let before = earlier
                        .buckets
                        .iter()
                        .find(|(b, _)| b == le)
                        .map_or(0.0, |(_, c)| *c);
                    (*le, (count - before).max(0.0))
                })
                .collect(),
        }
    }

    /// How many observations.
    pub fn count(&self) -> f64 {
        self.buckets.last().map_or(0.0, |(_, c)| *c)
    }

    /// The `q` quantile (0 to 1), interpolated linearly inside its bucket; `None` when empty.
    /// Above the last finite bound it is that bound.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let mut lower = 0.0;
        let mut below = 0.0;
        for (le, cumulative) in &self.buckets {
            if *cumulative >= rank && *cumulative > below {
                if le.is_infinite() {
                    return Some(lower);
                }
                let fraction = (rank - below) / (cumulative - below);
                return Some(lower + (le - lower) * fraction.clamp(0.0, 1.0));
            }
            if le.is_finite() {
                lower = *le;
            }
            below = *cumulative;
        }
        Some(lower)
    }

    /// The upper bound of the highest bucket with an observation: the largest observation is
    /// at most this (infinite when it is above every finite bound).
    pub fn max_bound(&self) -> Option<f64> {
        let mut below = 0.0;
        let mut max = None;
        for (le, cumulative) in &self.buckets {
            if *cumulative > below {
                max = Some(*le);
            }
            below = *cumulative;
        }
        max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP upwatch_checks Checks\n\
        # TYPE upwatch_checks counter\n\
        upwatch_checks_total{outcome=\"up\"} 90\n\
        upwatch_checks_total{outcome=\"timeout\"} 10\n\
        upwatch_lag_seconds_sum 1.5\n\
        upwatch_lag_seconds_count 100\n\
        upwatch_lag_seconds_bucket{le=\"0.001\"} 50\n\
        upwatch_lag_seconds_bucket{le=\"0.01\"} 98\n\
        upwatch_lag_seconds_bucket{le=\"0.1\"} 100\n\
        upwatch_lag_seconds_bucket{le=\"+Inf\"} 100\n\
        # EOF\n";

    #[test]
    fn sums_counters_over_labels() {
        let s = Scrape::parse(TEXT);
        assert_eq!(s.sum("upwatch_checks_total"), 100.0);
        assert_eq!(s.sum("upwatch_missing_total"), 0.0);
        assert_eq!(s.sum_where("upwatch_checks_total", "outcome", "up"), 90.0);
        assert_eq!(s.sum_where("upwatch_checks_total", "outcome", "dns"), 0.0);
    }

    #[test]
    fn percentiles_interpolate_inside_buckets() {
        let h = Scrape::parse(TEXT).histogram("upwatch_lag_seconds");
        assert_eq!(h.count(), 100.0);
        let p50 = h.quantile(0.5).unwrap();
        assert!((p50 - 0.001).abs() < 1e-9, "{p50}");
        let p99 = h.quantile(0.99).unwrap();
        assert!(p99 > 0.01 && p99 < 0.1, "{p99}");
        assert_eq!(h.max_bound(), Some(0.1));
    }

    #[test]
    fn deltas_count_only_the_window() {
        let before = Scrape::parse(TEXT).histogram("upwatch_lag_seconds");
        let later =
            Scrape::parse(&TEXT.replace("} 100\n", "} 200\n")).histogram("upwatch_lag_seconds");
        let window = later.since(&before);
        assert_eq!(window.count(), 100.0);
        // Every new observation is in the (0.01, 0.1] bucket.
        let p50 = window.quantile(0.5).unwrap();
        assert!(p50 > 0.01 && p50 <= 0.1, "{p50}");
        assert!(Histogram::default().quantile(0.5).is_none());
    }

    #[test]
    fn merged_scrapes_add_up() {
        let s = Scrape::merge(&[Scrape::parse(TEXT), Scrape::parse(TEXT)]);
        assert_eq!(s.sum("upwatch_checks_total"), 200.0);
        assert_eq!(s.histogram("upwatch_lag_seconds").count(), 200.0);
    }
}
