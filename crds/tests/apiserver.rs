//! The generated CRDs on a real kube-apiserver (meshlet-testenv; binaries
//! from `make k8s-bins`).
//!
//! - StorageOnly render: installs on a bare API server; objects round-trip;
//!   invalid objects are refused with a message naming the field.
//! - Full render: every version served; the API server converts through a
//!   conversion webhook served by this test on loopback, which answers
//!   ConversionReviews with `meshlet_crds::conversion::review` — what the
//!   real webhook computes.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, WebhookClientConfig,
};
use k8s_openapi::ByteString;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use meshlet_crds::manifests::{self, CrdRender};
use meshlet_testenv::json_server::JsonServer;
use meshlet_testenv::TestEnv;
use serde_json::{json, Value};

async fn install(client: &kube::Client, crds: Vec<CustomResourceDefinition>) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in &crds {
        api.create(&PostParams::default(), crd)
            .await
            .with_context(|| format!("creating CRD {:?}", crd.metadata.name))?;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for crd in &crds {
        let name = crd.metadata.name.clone().unwrap();
        loop {
            let got = api.get(&name).await?;
            let established = got
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            if established {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "CRD {name} not established: {}",
                    serde_json::to_string(&crd.spec)?
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

fn api_for(client: &kube::Client, ns: &str, api_version: &str, kind: &str) -> Api<DynamicObject> {
    let (group, version) = api_version.split_once('/').unwrap();
    let plural = match kind {
        "TrafficSplit" => "trafficsplits",
        "TrafficTarget" => "traffictargets",
        "HTTPRouteGroup" => "httproutegroups",
        "TCPRoute" => "tcproutes",
        "UDPRoute" => "udproutes",
        other => panic!("unknown kind {other}"),
    };
    let resource = ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: api_version.into(),
        kind: kind.into(),
        plural: plural.into(),
    };
    Api::namespaced_with(client.clone(), ns, &resource)
}

/// Creates `obj` (retrying while the new API is not yet discoverable) and
/// returns the API server's error message, if it refused it.
async fn create(client: &kube::Client, ns: &str, obj: &Value) -> Result<Result<Value, String>> {
    let api = api_for(
        client,
        ns,
        obj["apiVersion"].as_str().unwrap(),
        obj["kind"].as_str().unwrap(),
    );
    let dynamic: DynamicObject = serde_json::from_value(obj.clone())?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match api.create(&PostParams::default(), &dynamic).await {
            Ok(created) => return Ok(Ok(serde_json::to_value(created)?)),
            Err(kube::Error::Api(e)) if e.code == 404 && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(kube::Error::Api(e)) => return Ok(Err(e.message)),
            Err(e) => return Err(e.into()),
        }
    }
}

async fn get(
    client: &kube::Client,
    ns: &str,
    api_version: &str,
    kind: &str,
    name: &str,
) -> Result<Value> {
    let api = api_for(client, ns, api_version, kind);
    Ok(serde_json::to_value(api.get(name).await?)?)
}

/// `obj`'s fields but apiVersion, kind and metadata.
fn body(obj: &Value) -> Value {
    let mut map = obj.as_object().unwrap().clone();
    for key in ["apiVersion", "kind", "metadata"] {
        map.remove(key);
    }
    Value::Object(map)
}

#[tokio::test]
async fn storage_only_render_accepts_examples_and_refuses_bad_objects() -> Result<()> {
    let env = TestEnv::start().await?;
    let client = env.client();
    install(&client, manifests::all(CrdRender::StorageOnly)).await?;
    let ns = env.create_namespace("crds").await?;

    let good = [
        json!({"apiVersion": "split.smi-spec.io/v1alpha4", "kind": "TrafficSplit", "metadata": {"name": "ab-test"},
               "spec": {"service": "website", "matches": [{"kind": "HTTPRouteGroup", "name": "ab-test"}],
                        "backends": [{"service": "website-v1", "weight": 0}, {"service": "website-v2", "weight": 100}]}}),
        json!({"apiVersion": "access.smi-spec.io/v1alpha3", "kind": "TrafficTarget", "metadata": {"name": "path-specific"},
               "spec": {"destination": {"kind": "ServiceAccount", "name": "service-a", "namespace": "default"},
                        "rules": [{"kind": "TCPRoute", "name": "the-routes"},
                                  {"kind": "HTTPRouteGroup", "name": "the-routes", "matches": ["metrics"]}],
                        "sources": [{"kind": "ServiceAccount", "name": "prometheus", "namespace": "default"}]}}),
        json!({"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "HTTPRouteGroup", "metadata": {"name": "map-headers"},
               "spec": {"matches": [{"name": "android-insiders",
                                     "headers": {"user-agent": ".*Android.*", "cookie": "^(.*?;)?(type=insider)(;.*)?$"}}]}}),
        json!({"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "HTTPRouteGroup", "metadata": {"name": "list-headers"},
               "spec": {"matches": [{"name": "iphone-users", "pathRegex": "/api/.*", "methods": ["GET", "HEAD"],
                                     "headers": [{"user-agent": ".*iPhone.*"}]}]}}),
        json!({"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "TCPRoute", "metadata": {"name": "db"},
               "spec": {"matches": {"ports": [3306, 6446]}}}),
        json!({"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "UDPRoute", "metadata": {"name": "dns"},
               "spec": {"matches": {"ports": []}}}),
    ];
    for obj in &good {
        let created = create(&client, &ns, obj)
            .await?
            .map_err(|e| anyhow::anyhow!("{} refused: {e}", obj["metadata"]["name"]))?;
        assert_eq!(body(&created), body(obj), "stored as written");
        let read = get(
            &client,
            &ns,
            obj["apiVersion"].as_str().unwrap(),
            obj["kind"].as_str().unwrap(),
            obj["metadata"]["name"].as_str().unwrap(),
        )
        .await?;
        assert_eq!(body(&read), body(obj));
        // What the API server hands back reads into the Rust hub types.
        meshlet_crds::conversion::convert(&read, obj["apiVersion"].as_str().unwrap())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }

    let bad = [
        (
            json!({"apiVersion": "split.smi-spec.io/v1alpha4", "kind": "TrafficSplit", "metadata": {"name": "no-service"},
                   "spec": {"backends": [{"service": "a", "weight": 1}]}}),
            "spec.service",
        ),
        (
            json!({"apiVersion": "split.smi-spec.io/v1alpha4", "kind": "TrafficSplit", "metadata": {"name": "negative"},
                   "spec": {"service": "web", "backends": [{"service": "a", "weight": -1}]}}),
            "spec.backends[0].weight",
        ),
        (
            json!({"apiVersion": "split.smi-spec.io/v1alpha4", "kind": "TrafficSplit", "metadata": {"name": "no-backend-service"},
                   "spec": {"service": "web", "backends": [{"weight": 1}]}}),
            "spec.backends[0].service",
        ),
        (
            json!({"apiVersion": "access.smi-spec.io/v1alpha3", "kind": "TrafficTarget", "metadata": {"name": "grpc"},
                   "spec": {"destination": {"kind": "ServiceAccount", "name": "a"},
                            "rules": [{"kind": "GRPCRoute", "name": "r"}], "sources": []}}),
            "spec.rules[0].kind",
        ),
        (
            json!({"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "HTTPRouteGroup", "metadata": {"name": "fetch"},
                   "spec": {"matches": [{"name": "m", "methods": ["FETCH"]}]}}),
            "spec.matches[0].methods[0]",
        ),
        (
            json!({"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "TCPRoute", "metadata": {"name": "port0"},
                   "spec": {"matches": {"ports": [0]}}}),
            "spec.matches.ports[0]",
        ),
    ];
    for (obj, field) in &bad {
        match create(&client, &ns, obj).await? {
            Ok(_) => bail!("{} was admitted", obj["metadata"]["name"]),
            Err(message) => assert!(message.contains(field), "{field} not named in: {message}"),
        }
    }
    Ok(())
}

// --- Full render with a conversion webhook ------------------------------

#[tokio::test]
async fn full_render_converts_between_every_served_version_through_the_webhook() -> Result<()> {
    let env = TestEnv::start().await?;
    let client = env.client();

    // The conversion webhook, on loopback: exactly what meshlet-webhook's
    // /convert computes.
    let server = JsonServer::start(|request| {
        match serde_json::from_value(request) {
            Ok(review) => serde_json::to_value(meshlet_crds::conversion::review(review)),
            Err(e) => Ok(json!({"error": e.to_string()})),
        }
        .unwrap_or_default()
    })
    .await?;
    let (url, ca_pem) = (server.url.clone(), server.ca_pem.clone());

    // The Full render points at the in-cluster Service; here the webhook is
    // this test, on loopback.
    let mut crds = manifests::all(CrdRender::Full);
    for crd in &mut crds {
        if let Some(webhook) = crd
            .spec
            .conversion
            .as_mut()
            .and_then(|c| c.webhook.as_mut())
        {
            webhook.client_config = Some(WebhookClientConfig {
                url: Some(format!("{url}/convert")),
                ca_bundle: Some(ByteString(ca_pem.clone().into_bytes())),
                service: None,
            });
        }
    }
    install(&client, crds).await?;
    let ns = env.create_namespace("conversion").await?;

    // A v1alpha1 split with quantity weights, read in every version.
    let v1 = json!({"apiVersion": "split.smi-spec.io/v1alpha1", "kind": "TrafficSplit", "metadata": {"name": "canary"},
                    "spec": {"service": "web", "backends": [{"service": "web-v1", "weight": "500m"}, {"service": "web-v2", "weight": 1}]}});
    create(&client, &ns, &v1)
        .await?
        .map_err(|e| anyhow::anyhow!("v1alpha1 split refused: {e}"))?;
    let hub = get(
        &client,
        &ns,
        "split.smi-spec.io/v1alpha4",
        "TrafficSplit",
        "canary",
    )
    .await?;
    assert_eq!(hub["spec"]["backends"][0]["weight"], 500);
    assert_eq!(hub["spec"]["backends"][1]["weight"], 1000);
    let v2 = get(
        &client,
        &ns,
        "split.smi-spec.io/v1alpha2",
        "TrafficSplit",
        "canary",
    )
    .await?;
    assert_eq!(v2["spec"]["backends"][1]["weight"], 1000);
    let back = get(
        &client,
        &ns,
        "split.smi-spec.io/v1alpha1",
        "TrafficSplit",
        "canary",
    )
    .await?;
    assert_eq!(
        body(&back),
        json!({"spec": {"service": "web", "backends": [{"service": "web-v1", "weight": "500m"}, {"service": "web-v2", "weight": "1"}]}})
    );

    // A hub split with matches, seen through v1alpha2 and back.
    let ab = json!({"apiVersion": "split.smi-spec.io/v1alpha4", "kind": "TrafficSplit", "metadata": {"name": "ab"},
                    "spec": {"service": "web", "matches": [{"kind": "HTTPRouteGroup", "name": "firefox"}],
                             "backends": [{"service": "web-v2", "weight": 100}]}});
    create(&client, &ns, &ab)
        .await?
        .map_err(|e| anyhow::anyhow!("v1alpha4 split refused: {e}"))?;
    let old = get(
        &client,
        &ns,
        "split.smi-spec.io/v1alpha2",
        "TrafficSplit",
        "ab",
    )
    .await?;
    assert!(old["spec"].get("matches").is_none());
    assert!(old["metadata"]["annotations"]["meshlet.dev/conversion-data"].is_string());
    // A v1alpha2 client shifts the weight and writes the object back: the
    // split keeps its matches.
    let mut edited = old.clone();
    edited["spec"]["backends"][0]["weight"] = json!(50);
    let v2_api = api_for(&client, &ns, "split.smi-spec.io/v1alpha2", "TrafficSplit");
    v2_api
        .replace(
            "ab",
            &PostParams::default(),
            &serde_json::from_value(edited)?,
        )
        .await?;
    let hub_after = get(
        &client,
        &ns,
        "split.smi-spec.io/v1alpha4",
        "TrafficSplit",
        "ab",
    )
    .await?;
    assert_eq!(hub_after["spec"]["backends"][0]["weight"], 50);
    assert_eq!(hub_after["spec"]["matches"], ab["spec"]["matches"]);

    // A v1alpha1 TrafficTarget (top-level fields, a port), stored as v1alpha3.
    let tt = json!({"apiVersion": "access.smi-spec.io/v1alpha1", "kind": "TrafficTarget", "metadata": {"name": "api"},
                    "destination": {"kind": "ServiceAccount", "name": "api", "namespace": "default", "port": 8080},
                    "specs": [{"kind": "HTTPRouteGroup", "name": "routes", "matches": ["metrics"]}],
                    "sources": [{"kind": "ServiceAccount", "name": "prometheus", "namespace": "default"}]});
    create(&client, &ns, &tt)
        .await?
        .map_err(|e| anyhow::anyhow!("v1alpha1 target refused: {e}"))?;
    let tt3 = get(
        &client,
        &ns,
        "access.smi-spec.io/v1alpha3",
        "TrafficTarget",
        "api",
    )
    .await?;
    assert_eq!(tt3["spec"]["rules"][0]["name"], "routes");
    assert!(tt3["spec"]["destination"].get("port").is_none());
    let tt1 = get(
        &client,
        &ns,
        "access.smi-spec.io/v1alpha1",
        "TrafficTarget",
        "api",
    )
    .await?;
    assert_eq!(
        body(&tt1),
        body(&tt),
        "the port came back from the annotation"
    );

    // An HTTPRouteGroup v1alpha1 read as v1alpha4, and a TCPRoute v1alpha4
    // read as v1alpha1.
    let hrg = json!({"apiVersion": "specs.smi-spec.io/v1alpha1", "kind": "HTTPRouteGroup", "metadata": {"name": "routes"},
                     "matches": [{"name": "metrics", "pathRegex": "/metrics", "methods": ["GET"]}]});
    create(&client, &ns, &hrg)
        .await?
        .map_err(|e| anyhow::anyhow!("v1alpha1 route group refused: {e}"))?;
    let hrg4 = get(
        &client,
        &ns,
        "specs.smi-spec.io/v1alpha4",
        "HTTPRouteGroup",
        "routes",
    )
    .await?;
    assert_eq!(hrg4["spec"]["matches"], hrg["matches"]);
    let tcp = json!({"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "TCPRoute", "metadata": {"name": "db"},
                     "spec": {"matches": {"ports": [5432]}}});
    create(&client, &ns, &tcp)
        .await?
        .map_err(|e| anyhow::anyhow!("v1alpha4 TCPRoute refused: {e}"))?;
    let tcp1 = get(&client, &ns, "specs.smi-spec.io/v1alpha1", "TCPRoute", "db").await?;
    assert_eq!(body(&tcp1), json!({}));

    // A quantity the schema admits but that has no integer weight: the
    // conversion to the storage version fails and the create is refused,
    // naming the field.
    let sub_milli = json!({"apiVersion": "split.smi-spec.io/v1alpha1", "kind": "TrafficSplit", "metadata": {"name": "tiny"},
                           "spec": {"service": "web", "backends": [{"service": "web-v1", "weight": "1u"}]}});
    match create(&client, &ns, &sub_milli).await? {
        Ok(_) => bail!("a sub-milli weight was stored"),
        Err(message) => assert!(
            message.contains("spec.backends[0].weight") && message.contains("finer than 1m"),
            "{message}"
        ),
    }

    assert!(
        server.calls() > 0,
        "the API server never called the conversion webhook"
    );
    drop(server);
    Ok(())
}
