//! When and how long to wait before trying a Graph or ARM request again.

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub attempts: u32,
    /// The first wait when the server does not say how long; doubled each time.
    pub base_delay: Duration,
    /// No single wait is longer, whatever `Retry-After` says.
    pub max_delay: Duration,
    /// How long to keep trying a grant that names a service principal Graph does not know
    /// everywhere yet ("Not a valid reference update."): that can last minutes.
    pub replication: Duration,
}

impl Default for RetryPolicy {
    /// About a minute and a half per request: most replication settles within seconds. Grants
    /// naming a new service principal get five minutes.
    fn default() -> Self {
        RetryPolicy {
            attempts: 8,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            replication: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The wait before try number `attempt + 1` (`attempt` counts from 1): the server's
    /// `Retry-After` if it gave one, otherwise exponential backoff.
    pub fn delay(&self, attempt: u32, headers: &HeaderMap) -> Duration {
        let told = headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let backoff = self.base_delay.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        told.unwrap_or(backoff).min(self.max_delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_wins_and_backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(3),
            replication: Duration::ZERO,
        };
        let none = HeaderMap::new();
        assert_eq!(policy.delay(1, &none), Duration::from_millis(100));
        assert_eq!(policy.delay(3, &none), Duration::from_millis(400));
        assert_eq!(policy.delay(30, &none), Duration::from_secs(3));
        let mut told = HeaderMap::new();
        told.insert(RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(policy.delay(1, &told), Duration::from_secs(2));
        told.insert(RETRY_AFTER, "120".parse().unwrap());
        assert_eq!(policy.delay(1, &told), Duration::from_secs(3));
    }
}
