//! At most so many checks in flight against one host, so that a thousand monitors on one
//! host do not open a thousand connections at once (lychee bounds per host the same way).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// One semaphore per host, made on first use and dropped when no check holds or waits on it.
#[derive(Debug, Clone)]
pub(crate) struct HostLimiter {
    per_host: usize,
    hosts: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

/// A turn against one host; the next check may go when it is dropped.
pub(crate) struct Turn {
    _permit: Option<OwnedSemaphorePermit>,
    host: String,
    limiter: HostLimiter,
}

impl HostLimiter {
    /// A limiter of `per_host` checks in flight per host (0 means no limit).
    pub fn new(per_host: usize) -> HostLimiter {
        HostLimiter {
            per_host,
            hosts: Arc::default(),
        }
    }

    /// Waits for a turn against the host of `url`.
    pub async fn acquire(&self, url: &str) -> Turn {
        let host = host_of(url);
        if self.per_host == 0 || host.is_empty() {
            return Turn {
                _permit: None,
                host,
                limiter: self.clone(),
            };
        }
        let semaphore = {
            let mut hosts = self.hosts.lock().expect("host limiter lock");
            hosts
                .entry(host.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_host)))
                .clone()
        };
        let permit = semaphore.acquire_owned().await.ok();
        Turn {
            _permit: permit,
            host,
            limiter: self.clone(),
        }
    }

    /// Hosts with a semaphore now (for tests).
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.hosts.lock().expect("host limiter lock").len()
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        if self.limiter.per_host == 0 || self.host.is_empty() {
            return;
        }
        let permit = self._permit.take();
        drop(permit);
        let mut hosts = self.limiter.hosts.lock().expect("host limiter lock");
        // Forget an idle host's semaphore: only the map holds it and every permit is back.
        if let Some(semaphore) = hosts.get(&self.host) {
            if Arc::strong_count(semaphore) == 1
                && semaphore.available_permits() == self.limiter.per_host
            {
                hosts.remove(&self.host);
            }
        }
    }
}

/// The host part of `url` (`scheme://host[:port]/...`), lower-case; empty when there is none.
fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    host.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn hosts_are_taken_from_every_scheme() {
        for (url, host) in [
            ("https://Example.com/a?b", "example.com"),
            ("tcp://db.internal:5432", "db.internal"),
            ("icmp://10.0.0.1", "10.0.0.1"),
            ("dns://[::1]:53", "::1"),
            ("http://user:pw@h.test:8080/", "h.test"),
            ("push://abc", "abc"),
        ] {
            assert_eq!(host_of(url), host, "{url}");
        }
    }

    #[tokio::test]
    async fn no_more_than_the_limit_run_against_one_host() {
        let limiter = HostLimiter::new(2);
        let a = limiter.acquire("http://a.test/1").await;
        let _b = limiter.acquire("http://a.test/2").await;
        // Another host is not held up.
        let other = limiter.acquire("http://b.test/").await;
        // A third turn against a.test waits until one is given back.
        let third = limiter.acquire("http://a.test/3");
        tokio::pin!(third);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), &mut third)
                .await
                .is_err(),
            "a third check against one host must wait"
        );
        drop(a);
        let _c = tokio::time::timeout(Duration::from_secs(5), third)
            .await
            .expect("a turn is free once one is given back");
        drop(other);
        assert_eq!(
            limiter.tracked(),
            1,
            "an idle host's semaphore is forgotten"
        );
    }

    #[tokio::test]
    async fn zero_means_no_limit() {
        let limiter = HostLimiter::new(0);
        let mut turns = Vec::new();
        for _ in 0..100 {
            turns.push(limiter.acquire("http://a.test/").await);
        }
        assert_eq!(limiter.tracked(), 0);
    }
}
