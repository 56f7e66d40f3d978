//! Structured logs (tracing): human-readable or JSON, filtered by a
//! `tracing-subscriber` directive such as `info,meshlet_operator=debug`.

/// Installs the global subscriber; errors name the flag.
pub fn init(filter: &str, json: bool) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .map_err(|e| anyhow::anyhow!("--log {filter:?}: {e}"))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    }
    .map_err(|e| anyhow::anyhow!("installing the log subscriber: {e}"))
}
