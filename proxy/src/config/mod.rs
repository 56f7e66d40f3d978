//! Configuration: the static file, the compiled snapshot, the atomically
//! swapped store, and the operator's config stream.

mod backoff;
mod store;
pub mod stream;

pub use backoff::Backoff;
pub use store::{ConfigStore, Snapshot};

use meshlet_crds::contract::config::{ConfigMessage, ProxyConfig, CONFIG_VERSION};
use std::path::Path;

/// Parses a config file: JSON, or YAML when the name ends in `.yaml`/`.yml`.
/// The file holds a `ProxyConfig`, or a whole `ConfigMessage`.
pub fn parse_file(name: &Path, text: &str) -> anyhow::Result<ProxyConfig> {
    let yaml = name.extension().is_some_and(|e| e == "yaml" || e == "yml");
    let value: serde_json::Value = if yaml {
        serde_yaml::from_str(text)
            .map_err(|e| anyhow::anyhow!("{}: invalid YAML: {e}", name.display()))?
    } else {
        serde_json::from_str(text)
            .map_err(|e| anyhow::anyhow!("{}: invalid JSON: {e}", name.display()))?
    };
    let config = if value.get("config").is_some() && value.get("version").is_some() {
        decode_message(&value.to_string())
            .map_err(|e| anyhow::anyhow!("{}: {e}", name.display()))?
            .config
    } else {
        serde_json::from_value(value).map_err(|e| anyhow::anyhow!("{}: {e}", name.display()))?
    };
    Ok(config)
}

/// Reads and parses a config file.
pub fn load_file(path: &Path) -> anyhow::Result<ProxyConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("--config {}: {e}", path.display()))?;
    parse_file(path, &text)
}

/// Decodes one config stream line, checking the contract version.
pub fn decode_message(line: &str) -> anyhow::Result<ConfigMessage> {
    let msg: ConfigMessage =
        serde_json::from_str(line).map_err(|e| anyhow::anyhow!("config message: {e}"))?;
    if msg.version != CONFIG_VERSION {
        anyhow::bail!(
            "config message: version {} is not supported (expected {CONFIG_VERSION})",
            msg.version
        );
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_json_files_parse_to_the_same_config() {
        let json = r#"{"outbound":{"services":[{"name":"a","namespace":"b","ports":[{"port":80,"endpoints":[{"addr":"127.0.0.1:9"}]}]}]}}"#;
        let yaml = "outbound:\n  services:\n  - name: a\n    namespace: b\n    ports:\n    - port: 80\n      endpoints:\n      - addr: 127.0.0.1:9\n";
        let a = parse_file(Path::new("c.json"), json).unwrap();
        let b = parse_file(Path::new("c.yaml"), yaml).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn wrong_version_is_rejected() {
        let e = decode_message(r#"{"version":2,"generation":1,"config":{}}"#).unwrap_err();
        assert!(e.to_string().contains("version 2"), "{e}");
        assert!(decode_message(r#"{"version":1,"generation":1,"config":{}}"#).is_ok());
    }

    #[test]
    fn bad_field_is_named() {
        let e = parse_file(
            Path::new("c.json"),
            r#"{"outbound":{"services":[{"name":"a","ports":[{"port":"x"}]}]}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("c.json"), "{e}");
    }
}
