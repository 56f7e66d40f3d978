//! `meshlet check`: pre-install (`--pre`) and post-install checks, one line
//! each, `✔` or `✘` with a hint; exit status 1 when any fails.

pub mod apiservices;
pub mod certs;
pub mod post;
pub mod pre;

use std::process::ExitCode;

use serde::Serialize;

use crate::cli::{CheckArgs, Output};
use crate::kubeargs::KubeArgs;

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked, as a statement that holds when it passes.
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// What was found (a count, a version, what is wrong).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// What to do about a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Check {
    /// A passed check.
    pub fn pass(name: impl Into<String>, detail: impl Into<Option<String>>) -> Check {
        Check {
            name: name.into(),
            ok: true,
            detail: detail.into(),
            hint: None,
        }
    }

    /// A failed check with what is wrong and a hint.
    pub fn fail(
        name: impl Into<String>,
        detail: impl Into<String>,
        hint: impl Into<String>,
    ) -> Check {
        Check {
            name: name.into(),
            ok: false,
            detail: Some(detail.into()),
            hint: Some(hint.into()),
        }
    }
}

/// The checks as text: `✔ name (detail)` or `✘ name: detail` and an
/// indented hint.
pub fn render_text(checks: &[Check]) -> String {
    let mut out = String::new();
    for check in checks {
        match (check.ok, &check.detail) {
            (true, Some(detail)) => out.push_str(&format!("✔ {} ({detail})\n", check.name)),
            (true, None) => out.push_str(&format!("✔ {}\n", check.name)),
            (false, detail) => {
                out.push_str(&format!("✘ {}", check.name));
                if let Some(detail) = detail {
                    out.push_str(&format!(": {detail}"));
                }
                out.push('\n');
                if let Some(hint) = &check.hint {
                    out.push_str(&format!("    hint: {hint}\n"));
                }
            }
        }
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    if failed == 0 {
        out.push_str(&format!("Status: all {} checks passed\n", checks.len()));
    } else {
        out.push_str(&format!(
            "Status: {failed} of {} checks failed\n",
            checks.len()
        ));
    }
    out
}

/// The checks as JSON: `{"ok": bool, "checks": [...]}`.
pub fn render_json(checks: &[Check]) -> String {
    serde_json::to_string_pretty(&serde_json::json!({
        "ok": checks.iter().all(|c| c.ok),
        "checks": checks,
    }))
    .expect("checks serialize")
}

/// Runs `meshlet check`.
pub async fn run(kube: &KubeArgs, args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let checks = match kube.client().await {
        Err(e) => vec![Check::fail(
            "a Kubernetes cluster is configured",
            format!("{e:#}"),
            "set --kubeconfig/--context or KUBECONFIG",
        )],
        Ok((client, _)) if args.pre => pre::checks(&client).await,
        Ok((client, _)) => {
            let options = post::Options {
                expiry_margin: args.expiry_warning,
                proxy_version: args
                    .expected_proxy_version
                    .clone()
                    .unwrap_or_else(|| crate::VERSION.to_string()),
            };
            post::checks(&client, &options).await
        }
    };
    match args.output {
        Output::Text => print!("{}", render_text(&checks)),
        Output::Json => println!("{}", render_json(&checks)),
    }
    Ok(if checks.iter().all(|c| c.ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_json() {
        let checks = vec![
            Check::pass("CRDs present", Some("5".to_string())),
            Check::pass("plain", None),
            Check::fail(
                "operator ready",
                "0/1 replicas ready",
                "kubectl -n meshlet-system describe deploy meshlet-operator",
            ),
        ];
        assert_eq!(
            render_text(&checks),
            "✔ CRDs present (5)\n✔ plain\n✘ operator ready: 0/1 replicas ready\n    \
             hint: kubectl -n meshlet-system describe deploy meshlet-operator\n\
             Status: 1 of 3 checks failed\n"
        );
        let json: serde_json::Value = serde_json::from_str(&render_json(&checks)).unwrap();
        assert_eq!(json["ok"], false);
        assert_eq!(
            json["checks"][2]["hint"],
            "kubectl -n meshlet-system describe deploy meshlet-operator"
        );
        assert!(json["checks"][1].get("detail").is_none());
    }
}
