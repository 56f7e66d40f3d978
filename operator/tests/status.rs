//! Status conditions on SMI objects through the real API server: the
//! operator writes `Accepted`/`ResolvedRefs` conditions (reason and field
//! in the message) for misconfigured TrafficSplits and TrafficTargets, and
//! clears them once the objects are fixed; spec is never touched.

mod common;

use std::time::Duration;

use anyhow::Result;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use meshlet_crds::access::v1alpha3::TrafficTarget;
use meshlet_crds::split::status::SmiStatus;
use meshlet_crds::split::v1alpha4::TrafficSplit;
use meshlet_operator::context::Settings;
use meshlet_operator::fixtures;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

/// (status, reason, message) of condition `type_`.
fn condition(status: Option<&SmiStatus>, type_: &str) -> Option<(String, String, String)> {
    status?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

async fn split_status(client: &Client, ns: &str, name: &str) -> Result<TrafficSplit> {
    Ok(Api::<TrafficSplit>::namespaced(client.clone(), ns)
        .get(name)
        .await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditions_appear_and_clear() -> Result<()> {
    let env = common::env().await?;
    let client = env.client();
    let ns = env.create_namespace("status").await?;
    let _op = common::operator(env, Settings::default()).await?;

    common::create(
        &client,
        &ns,
        &fixtures::service(&ns, "web", &[("http", 80, 8080)]),
    )
    .await?;
    common::create(
        &client,
        &ns,
        &fixtures::service(&ns, "web-v1", &[("http", 80, 8080)]),
    )
    .await?;
    // All weights zero, and web-v2 does not exist.
    let split = fixtures::traffic_split(&ns, "canary", "web", &[("web-v1", 0), ("web-v2", 0)]);
    let created = common::create(&client, &ns, &split).await?;
    let generation = created.metadata.generation;

    let ts = common::eventually("split conditions", WAIT, || async {
        let ts = split_status(&client, &ns, "canary").await?;
        let ok = condition(ts.status.as_ref(), "Accepted").is_some_and(|c| c.0 == "False")
            && condition(ts.status.as_ref(), "ResolvedRefs").is_some_and(|c| c.0 == "False");
        Ok(ok.then_some(ts))
    })
    .await?;
    let (_, reason, message) = condition(ts.status.as_ref(), "Accepted").unwrap();
    assert_eq!(reason, "AllWeightsZero", "{message}");
    let (_, reason, message) = condition(ts.status.as_ref(), "ResolvedRefs").unwrap();
    assert_eq!(reason, "BackendServiceNotFound");
    assert!(
        message.contains("spec.backends[1]") && message.contains("web-v2"),
        "{message}"
    );
    let c = ts
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "Accepted")
        .unwrap();
    assert_eq!(c.observed_generation, generation);
    // Spec untouched: same generation, same backends.
    assert_eq!(ts.metadata.generation, generation);
    assert_eq!(ts.spec, split.spec);
    let managers: Vec<(String, Option<String>)> = ts
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .map(|m| (m.manager.clone().unwrap_or_default(), m.subresource.clone()))
        .collect();
    assert!(
        managers.contains(&("meshlet-operator".into(), Some("status".into()))),
        "{managers:?}"
    );
    assert!(
        !managers
            .iter()
            .any(|(m, sub)| m == "meshlet-operator" && sub.is_none()),
        "the operator wrote outside the status: {managers:?}"
    );

    // Fixed: the backend exists, weights are not all zero.
    common::create(
        &client,
        &ns,
        &fixtures::service(&ns, "web-v2", &[("http", 80, 8080)]),
    )
    .await?;
    Api::<TrafficSplit>::namespaced(client.clone(), &ns)
        .patch(
            "canary",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"backends": [
                {"service": "web-v1", "weight": 90}, {"service": "web-v2", "weight": 10}
            ]}})),
        )
        .await?;
    let ts = common::eventually("split conditions cleared", WAIT, || async {
        let ts = split_status(&client, &ns, "canary").await?;
        let ok = ["Accepted", "ResolvedRefs"]
            .iter()
            .all(|t| condition(ts.status.as_ref(), t).is_some_and(|c| c.0 == "True"));
        Ok(ok.then_some(ts))
    })
    .await?;
    let c = ts
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "Accepted")
        .unwrap();
    assert_eq!(c.observed_generation, ts.metadata.generation);
    assert_ne!(ts.metadata.generation, generation);

    // A split naming its own root as a backend: not accepted, reason says so.
    // (Another root than `canary`'s, which would win as the older split.)
    let own = fixtures::traffic_split(&ns, "loop", "web-v1", &[("web-v1", 50), ("web-v2", 50)]);
    common::create(&client, &ns, &own).await?;
    common::eventually("self-split condition", WAIT, || async {
        let ts = split_status(&client, &ns, "loop").await?;
        Ok(condition(ts.status.as_ref(), "Accepted")
            .filter(|c| {
                c.0 == "False" && c.1 == "BackendIsRootService" && c.2.contains("spec.backends[0]")
            })
            .map(|_| ()))
    })
    .await?;

    // A TrafficTarget naming a missing HTTPRouteGroup, then the group appears.
    common::create(&client, &ns, &fixtures::service_account(&ns, "web")).await?;
    let tt = fixtures::traffic_target(
        &ns,
        "allow",
        "web",
        vec![fixtures::subject(&ns, "client")],
        vec![fixtures::http_rule("routes", &[])],
    );
    common::create(&client, &ns, &tt).await?;
    let targets: Api<TrafficTarget> = Api::namespaced(client.clone(), &ns);
    common::eventually("target condition", WAIT, || async {
        let tt = targets.get("allow").await?;
        Ok(condition(tt.status.as_ref(), "ResolvedRefs")
            .filter(|c| c.0 == "False" && c.1 == "RouteNotFound" && c.2.contains("spec.rules[0]"))
            .map(|_| ()))
    })
    .await?;
    let group = fixtures::http_route_group(
        &ns,
        "routes",
        &[("all", meshlet_crds::specs::HttpMethod::Any, ".*")],
    );
    common::create(&client, &ns, &group).await?;
    common::eventually("target condition cleared", WAIT, || async {
        let tt = targets.get("allow").await?;
        Ok(condition(tt.status.as_ref(), "ResolvedRefs")
            .filter(|c| c.0 == "True")
            .map(|_| ()))
    })
    .await?;
    Ok(())
}
