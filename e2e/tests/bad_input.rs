//! Bad input and versions (`make e2e`): invalid SMI objects are refused at
//! admission with the validating webhook's message naming the field, and
//! objects written in one SMI version read back in every other version
//! (the webhook converts; nothing is lost on the way back).

use anyhow::{bail, ensure};
use kube::Client;
use meshlet_e2e::{mesh, scenario};
use serde_json::{json, Value};

#[tokio::test]
async fn invalid_smi_objects_are_refused_with_the_field_named() {
    scenario::run("bad-input", false, |client, ns| async move {
        refused(&client, &ns).await
    })
    .await;
}

/// Each case: an object the CRD schema accepts but Meshlet's rules refuse,
/// and the field the message must name.
fn cases(ns: &str) -> Vec<(&'static str, Value, &'static str)> {
    vec![
        (
            "all weights zero",
            json!({"apiVersion": "split.smi-spec.io/v1alpha4", "kind": "TrafficSplit",
                   "metadata": {"name": "zero"},
                   "spec": {"service": "web", "backends": [
                       {"service": "web-v1", "weight": 0}, {"service": "web-v2", "weight": 0}]}}),
            "spec.backends",
        ),
        (
            "a backend listed twice (v1alpha2)",
            json!({"apiVersion": "split.smi-spec.io/v1alpha2", "kind": "TrafficSplit",
                   "metadata": {"name": "twice"},
                   "spec": {"service": "web", "backends": [
                       {"service": "web-v1", "weight": 50}, {"service": "web-v1", "weight": 50}]}}),
            "spec.backends[1].service",
        ),
        (
            "the root as its own backend (v1alpha1)",
            json!({"apiVersion": "split.smi-spec.io/v1alpha1", "kind": "TrafficSplit",
                   "metadata": {"name": "self"},
                   "spec": {"service": "web", "backends": [
                       {"service": "web", "weight": "500m"}, {"service": "web-v2", "weight": "500m"}]}}),
            "spec.backends[0].service",
        ),
        (
            "a destination in another namespace",
            json!({"apiVersion": "access.smi-spec.io/v1alpha3", "kind": "TrafficTarget",
                   "metadata": {"name": "elsewhere"},
                   "spec": {"destination": {"kind": "ServiceAccount", "name": "web", "namespace": "kube-system"},
                            "sources": [{"kind": "ServiceAccount", "name": "client", "namespace": ns}],
                            "rules": [{"kind": "HTTPRouteGroup", "name": "routes"}]}}),
            "spec.destination.namespace",
        ),
        (
            "a path regex that does not compile",
            json!({"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "HTTPRouteGroup",
                   "metadata": {"name": "broken-regex"},
                   "spec": {"matches": [{"name": "api", "pathRegex": "/api/(unclosed"}]}}),
            "spec.matches[0].pathRegex",
        ),
    ]
}

async fn refused(client: &Client, ns: &str) -> anyhow::Result<()> {
    for (what, object, field) in cases(ns) {
        match mesh::create_smi(client, ns, object.clone()).await {
            Ok(_) => bail!("{what}: accepted, but it is invalid: {object}"),
            Err(kube::Error::Api(status)) => {
                let message = status.message.clone();
                println!("{what}: refused ({}): {message}", status.code);
                ensure!(
                    message.contains("validate.meshlet.dev") && message.contains(field),
                    "{what}: refused, but not by Meshlet's webhook naming {field}: {message}"
                );
            }
            Err(e) => bail!("{what}: unexpected error: {e}"),
        }
    }
    // The same client can write a valid object (the refusals were not an outage).
    mesh::create_smi(
        client,
        ns,
        json!({"apiVersion": "split.smi-spec.io/v1alpha4", "kind": "TrafficSplit",
               "metadata": {"name": "fine"},
               "spec": {"service": "web", "backends": [{"service": "web-v1", "weight": 1}]}}),
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn objects_written_in_one_version_read_back_in_every_other() {
    scenario::run("versions", false, |client, ns| async move {
        versions(&client, &ns).await
    })
    .await;
}

/// Read `name` in each version; `check` sees each version's `spec`
/// (TrafficTarget v1alpha1 has top-level fields instead) and the object.
async fn read_all(
    client: &Client,
    ns: &str,
    group: &str,
    kind: &str,
    name: &str,
    versions: &[&str],
    check: impl Fn(&str, &Value) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    for v in versions {
        let obj = mesh::get_smi(client, ns, &format!("{group}/{v}"), kind, name).await?;
        ensure!(
            obj["apiVersion"] == format!("{group}/{v}"),
            "{kind} {name} read as {v} came back as {}",
            obj["apiVersion"]
        );
        check(v, &obj).map_err(|e| anyhow::anyhow!("{kind} {name} read as {v}: {e:#}"))?;
        println!("{kind} {name} read as {v}: ok");
    }
    Ok(())
}

async fn versions(client: &Client, ns: &str) -> anyhow::Result<()> {
    const SPLIT: &str = "split.smi-spec.io";
    const ACCESS: &str = "access.smi-spec.io";
    const SPECS: &str = "specs.smi-spec.io";
    let all_split = ["v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4"];

    // TrafficSplit written in v1alpha1 (quantities) …
    mesh::create_smi(
        client,
        ns,
        json!({"apiVersion": "split.smi-spec.io/v1alpha1", "kind": "TrafficSplit",
               "metadata": {"name": "old"},
               "spec": {"service": "web", "backends": [
                   {"service": "web-v1", "weight": "900m"}, {"service": "web-v2", "weight": "100m"}]}}),
    )
    .await?;
    read_all(
        client,
        ns,
        SPLIT,
        "TrafficSplit",
        "old",
        &all_split,
        |v, o| {
            let b = &o["spec"]["backends"];
            ensure!(
                o["spec"]["service"] == "web",
                "root service {}",
                o["spec"]["service"]
            );
            ensure!(
                b[0]["service"] == "web-v1" && b[1]["service"] == "web-v2",
                "backends {b}"
            );
            if v == "v1alpha1" {
                ensure!(
                    b[0]["weight"] == "900m" && b[1]["weight"] == "100m",
                    "weights {b}"
                );
            } else {
                ensure!(
                    b[0]["weight"] == 900 && b[1]["weight"] == 100,
                    "weights {b}"
                );
            }
            Ok(())
        },
    )
    .await?;

    // … and one written in v1alpha4 with `matches`, which v1alpha1/2 cannot
    // hold: read there, then read back in v1alpha4 with the matches intact.
    mesh::create_smi(
        client,
        ns,
        json!({"apiVersion": "split.smi-spec.io/v1alpha4", "kind": "TrafficSplit",
               "metadata": {"name": "new"},
               "spec": {"service": "web",
                        "matches": [{"kind": "HTTPRouteGroup", "name": "canary-users"}],
                        "backends": [{"service": "web-v2", "weight": 100}]}}),
    )
    .await?;
    read_all(
        client,
        ns,
        SPLIT,
        "TrafficSplit",
        "new",
        &all_split,
        |v, o| {
            ensure!(
                o["spec"]["backends"][0]["service"] == "web-v2",
                "backends {}",
                o["spec"]["backends"]
            );
            if v == "v1alpha3" || v == "v1alpha4" {
                ensure!(
                    o["spec"]["matches"][0]["name"] == "canary-users",
                    "matches {}",
                    o["spec"]["matches"]
                );
            }
            Ok(())
        },
    )
    .await?;

    // TrafficTarget written in v1alpha1 (`specs` at the top level) …
    mesh::create_smi(
        client,
        ns,
        json!({"apiVersion": "access.smi-spec.io/v1alpha1", "kind": "TrafficTarget",
               "metadata": {"name": "old-target"},
               "destination": {"kind": "ServiceAccount", "name": "web", "namespace": ns},
               "sources": [{"kind": "ServiceAccount", "name": "client", "namespace": ns}],
               "specs": [{"kind": "HTTPRouteGroup", "name": "routes", "matches": ["api"]}]}),
    )
    .await?;
    read_all(
        client,
        ns,
        ACCESS,
        "TrafficTarget",
        "old-target",
        &["v1alpha1", "v1alpha2", "v1alpha3"],
        |v, o| {
            let (dest, rules) = if v == "v1alpha1" {
                (&o["destination"], &o["specs"])
            } else {
                (&o["spec"]["destination"], &o["spec"]["rules"])
            };
            ensure!(dest["name"] == "web", "destination {dest}");
            ensure!(
                rules[0]["name"] == "routes" && rules[0]["matches"][0] == "api",
                "rules {rules}"
            );
            Ok(())
        },
    )
    .await?;

    // HTTPRouteGroup written in v1alpha4 with headers (absent in v1alpha1).
    mesh::create_smi(
        client,
        ns,
        json!({"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "HTTPRouteGroup",
               "metadata": {"name": "routes"},
               "spec": {"matches": [{"name": "api", "pathRegex": "/api/.*", "methods": ["GET"],
                                     "headers": [{"x-canary": "true"}]}]}}),
    )
    .await?;
    read_all(
        client,
        ns,
        SPECS,
        "HTTPRouteGroup",
        "routes",
        &["v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4"],
        |v, o| {
            let m = if v == "v1alpha1" || v == "v1alpha2" {
                &o["matches"][0]
            } else {
                &o["spec"]["matches"][0]
            };
            ensure!(
                m["name"] == "api" && m["pathRegex"] == "/api/.*",
                "match {m}"
            );
            if v == "v1alpha4" {
                ensure!(!m["headers"].is_null(), "headers lost on the way back: {m}");
            }
            Ok(())
        },
    )
    .await?;

    // TCPRoute written in v1alpha4 with ports, read in every version.
    mesh::create_smi(
        client,
        ns,
        json!({"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "TCPRoute",
               "metadata": {"name": "db"},
               "spec": {"matches": {"name": "postgres", "ports": [5432]}}}),
    )
    .await?;
    read_all(
        client,
        ns,
        SPECS,
        "TCPRoute",
        "db",
        &["v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4"],
        |v, o| {
            if v == "v1alpha4" {
                ensure!(
                    o["spec"]["matches"]["ports"][0] == 5432,
                    "ports {}",
                    o["spec"]
                );
            }
            Ok(())
        },
    )
    .await?;
    Ok(())
}
