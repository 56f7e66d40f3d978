//! Polling with a deadline, for conditions the watch API makes awkward.

use std::future::Future;
use std::time::{Duration, Instant};

/// Call `check` every `every` until it returns `Ok(Some(value))` or
/// `timeout` passes. `Ok(None)` means "not yet"; errors are remembered and
/// retried (the API server may be briefly unavailable), and the last one is
/// reported on timeout together with `what`.
pub async fn until<T, F, Fut>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_error = None;
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(e) => last_error = Some(e),
        }
        if Instant::now() >= deadline {
            return Err(match last_error {
                Some(e) => e.context(format!("timed out after {timeout:?} waiting for {what}")),
                None => anyhow::anyhow!("timed out after {timeout:?} waiting for {what}"),
            });
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn returns_once_the_check_passes() {
        let calls = AtomicU32::new(0);
        let got = until(
            "three calls",
            Duration::from_secs(5),
            Duration::from_millis(1),
            || async {
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                Ok((n == 3).then_some(n))
            },
        )
        .await
        .unwrap();
        assert_eq!(got, 3);
    }

    #[tokio::test]
    async fn times_out_naming_what_and_the_last_error() {
        let err = until::<(), _, _>(
            "never",
            Duration::from_millis(20),
            Duration::from_millis(5),
            || async { Err(anyhow::anyhow!("boom")) },
        )
        .await
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("waiting for never") && text.contains("boom"),
            "{text}"
        );
    }
}
