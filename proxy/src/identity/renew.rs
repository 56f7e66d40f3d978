//! Keeps the proxy's certificate fresh: certify at start, renew at the
//! operator's `renewAfterUnix`, and on failure retry with jittered
//! exponential backoff while the current certificate keeps serving.

use super::certify::{certify_once, CertifyError, CertifySettings};
use super::TlsStore;
use crate::config::Backoff;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// Shortest wait before renewing a certificate just issued.
const MIN_RENEW_WAIT: Duration = Duration::from_secs(1);

/// Retry delays after a failed certify.
#[derive(Debug, Clone, Copy)]
pub struct RetryDelays {
    /// First retry delay.
    pub min: Duration,
    /// Longest retry delay.
    pub max: Duration,
}

impl Default for RetryDelays {
    fn default() -> Self {
        Self {
            min: Duration::from_millis(500),
            max: Duration::from_secs(60),
        }
    }
}

/// Runs until `shutdown`.
pub async fn run(
    settings: CertifySettings,
    tls: Arc<TlsStore>,
    delays: RetryDelays,
    shutdown: CancellationToken,
) {
    let mut backoff = Backoff::new(delays.min, delays.max);
    loop {
        let delay = match certify_once(&settings, &tls).await {
            Ok(issued) => {
                backoff.reset();
                // At least MIN_RENEW_WAIT, so a renewal time in the past
                // (clock skew) cannot turn into a request loop.
                let wait = issued
                    .renew_after
                    .duration_since(SystemTime::now())
                    .unwrap_or_default()
                    .max(MIN_RENEW_WAIT);
                // A little jitter so proxies started together spread out.
                let jitter = Duration::from_millis(fastrand::u64(0..=wait.as_millis() as u64 / 20));
                tracing::info!(
                    identity = %tls.local().map(|l| l.id.to_string()).unwrap_or_default(),
                    expires_in_s = issued.expires.duration_since(SystemTime::now()).unwrap_or_default().as_secs(),
                    renew_in_s = (wait + jitter).as_secs(),
                    "identity: certificate issued"
                );
                wait + jitter
            }
            Err(e) => {
                let delay = backoff.next_delay();
                match &e {
                    CertifyError::Refused { status, message } => tracing::error!(
                        operator = %settings.operator,
                        %status,
                        reason = %message,
                        retry_in_ms = delay.as_millis() as u64,
                        "identity: operator refused the certificate request"
                    ),
                    CertifyError::Failed(error) => tracing::warn!(
                        operator = %settings.operator,
                        %error,
                        retry_in_ms = delay.as_millis() as u64,
                        "identity: certificate request failed"
                    ),
                }
                delay
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
