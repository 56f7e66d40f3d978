//! Reading a TrafficSplit's backends and writing new weights: server-side
//! apply of the storage version (v1alpha4) with field manager `meshlet-cli`,
//! so each write is one atomic change of the whole `backends` list.

use anyhow::Context as _;
use kube::api::{Patch, PatchParams};
use kube::Api;
use meshlet_crds::split::v1alpha4::TrafficSplit;
use serde_json::json;

/// The field manager of the CLI's writes.
pub const FIELD_MANAGER: &str = "meshlet-cli";

/// The two backends a canary moves traffic between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// The backend gaining traffic.
    pub canary: String,
    /// The backend keeping the rest.
    pub primary: String,
}

/// Picks the canary and primary backends of `split`, checking the flags:
/// `--to` must be a backend; `--from` too, else the other backend with the
/// most weight.
pub fn pair(split: &TrafficSplit, to: &str, from: Option<&str>) -> anyhow::Result<Pair> {
    let backends = &split.spec.backends;
    let names = || {
        backends
            .iter()
            .map(|b| b.service.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !backends.iter().any(|b| b.service == to) {
        anyhow::bail!(
            "--to {to}: not a backend of this TrafficSplit (backends: {})",
            names()
        );
    }
    let primary = match from {
        Some(from) if from == to => anyhow::bail!("--from {from}: the same backend as --to"),
        Some(from) if backends.iter().any(|b| b.service == from) => from.to_string(),
        Some(from) => {
            anyhow::bail!(
                "--from {from}: not a backend of this TrafficSplit (backends: {})",
                names()
            )
        }
        None => backends
            .iter()
            .filter(|b| b.service != to)
            .max_by_key(|b| b.weight)
            .map(|b| b.service.clone())
            .with_context(|| {
                format!("--to {to}: the TrafficSplit has no other backend to take traffic from")
            })?,
    };
    Ok(Pair {
        canary: to.to_string(),
        primary,
    })
}

/// The canary's share of the split's total weight, percent, rounded.
pub fn canary_percent(split: &TrafficSplit, canary: &str) -> u64 {
    let total: u64 = split.spec.backends.iter().map(|b| b.weight).sum();
    let weight = split
        .spec
        .backends
        .iter()
        .find(|b| b.service == canary)
        .map_or(0, |b| b.weight);
    if total == 0 {
        0
    } else {
        ((weight as f64 * 100.0) / total as f64).round() as u64
    }
}

/// The object to apply: every backend in its place, the canary and primary
/// with the given weights, any other backend at 0.
pub fn applied(split: &TrafficSplit, pair: &Pair, canary: u64, primary: u64) -> serde_json::Value {
    let backends: Vec<_> = split
        .spec
        .backends
        .iter()
        .map(|b| {
            let weight = if b.service == pair.canary {
                canary
            } else if b.service == pair.primary {
                primary
            } else {
                0
            };
            json!({"service": b.service, "weight": weight})
        })
        .collect();
    json!({
        "apiVersion": "split.smi-spec.io/v1alpha4",
        "kind": "TrafficSplit",
        "metadata": {
            "name": split.metadata.name,
            "namespace": split.metadata.namespace,
        },
        "spec": {"service": split.spec.service, "backends": backends},
    })
}

/// Reads the split (in the storage version).
pub async fn read(api: &Api<TrafficSplit>, name: &str) -> anyhow::Result<TrafficSplit> {
    api.get_opt(name)
        .await
        .with_context(|| format!("reading TrafficSplit {name}"))?
        .with_context(|| format!("TrafficSplit {name} does not exist"))
}

/// Writes the weights (one server-side apply); returns the split as stored.
pub async fn write(
    api: &Api<TrafficSplit>,
    split: &TrafficSplit,
    pair: &Pair,
    canary: u64,
    primary: u64,
) -> anyhow::Result<TrafficSplit> {
    let name = split.metadata.name.clone().unwrap_or_default();
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(applied(split, pair, canary, primary)),
    )
    .await
    .with_context(|| format!("writing the weights of TrafficSplit {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(backends: &[(&str, u64)]) -> TrafficSplit {
        serde_json::from_value(json!({
            "apiVersion": "split.smi-spec.io/v1alpha4", "kind": "TrafficSplit",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"service": "web", "backends": backends.iter()
                .map(|(s, w)| json!({"service": s, "weight": w})).collect::<Vec<_>>()}
        }))
        .unwrap()
    }

    #[test]
    fn pair_checks_the_flags() {
        let s = split(&[("web-v1", 900), ("web-v2", 100), ("web-old", 0)]);
        assert_eq!(
            pair(&s, "web-v2", None).unwrap(),
            Pair {
                canary: "web-v2".into(),
                primary: "web-v1".into()
            }
        );
        assert_eq!(
            pair(&s, "web-v2", Some("web-old")).unwrap().primary,
            "web-old"
        );
        let err = pair(&s, "web-v3", None).unwrap_err().to_string();
        assert!(
            err.starts_with("--to web-v3") && err.contains("web-v1, web-v2, web-old"),
            "{err}"
        );
        assert!(pair(&s, "web-v2", Some("nope"))
            .unwrap_err()
            .to_string()
            .starts_with("--from nope"));
        assert!(pair(&s, "web-v2", Some("web-v2")).is_err());
        assert!(pair(&split(&[("only", 1)]), "only", None).is_err());
    }

    #[test]
    fn percent_and_applied_object() {
        let s = split(&[("web-v1", 900), ("web-v2", 100), ("web-old", 5)]);
        assert_eq!(canary_percent(&s, "web-v2"), 10);
        assert_eq!(canary_percent(&split(&[("a", 0), ("b", 0)]), "a"), 0);
        let p = pair(&s, "web-v2", None).unwrap();
        let obj = applied(&s, &p, 40, 60);
        assert_eq!(
            obj["spec"]["backends"],
            json!([{"service": "web-v1", "weight": 60}, {"service": "web-v2", "weight": 40},
                   {"service": "web-old", "weight": 0}])
        );
        assert_eq!(obj["spec"]["service"], "web");
    }
}
