//! The operator against a real API server: SMI and Kubernetes objects in,
//! the expected config out on a real HTTP/2 config stream; deletions,
//! authentication, Events, admin endpoints and leader election.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::*;
use hyper::StatusCode;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client};
use meshlet_crds::contract::config::ConfigMessage;
use meshlet_crds::split::v1alpha4::TrafficSplit;
use meshlet_operator::config::findings::reason;
use meshlet_operator::context::Settings;
use meshlet_operator::fixtures::*;
use meshlet_operator::leader::LeaderSettings;

const WAIT: Duration = Duration::from_secs(20);

/// A namespace with a client pod (ServiceAccount `client`), services
/// web (root), web-v1 and web-v2 with endpoints; returns (ns, client pod).
async fn shop(client: &Client, ns: &str) -> Result<Pod> {
    create(client, ns, &service_account(ns, "client")).await?;
    create(client, ns, &service_account(ns, "web")).await?;
    let client_pod = create(client, ns, &pod(ns, "client-0", "client", true, &[8080])).await?;
    create(client, ns, &pod(ns, "web-v1-0", "web", true, &[8080])).await?;
    for svc in ["web", "web-v1", "web-v2"] {
        create(client, ns, &service(ns, svc, &[("http", 80, 8080)])).await?;
    }
    create(
        client,
        ns,
        &endpoint_slice(
            ns,
            "web-v1",
            "web-v1-x",
            "http",
            8080,
            &[("10.9.0.1", "web-v1-0", true)],
        ),
    )
    .await?;
    create(
        client,
        ns,
        &endpoint_slice(
            ns,
            "web-v2",
            "web-v2-x",
            "http",
            8080,
            &[("10.9.0.2", "", true)],
        ),
    )
    .await?;
    Ok(client_pod)
}

fn weights(msg: &ConfigMessage, ns: &str, root: &str) -> Option<Vec<(String, u32)>> {
    let svc = msg
        .config
        .outbound
        .services
        .iter()
        .find(|s| s.name == root && s.namespace == ns)?;
    Some(
        svc.split
            .as_ref()?
            .backends
            .iter()
            .map(|b| (b.service.name.clone(), b.weight))
            .collect(),
    )
}

fn w(pairs: &[(&str, u32)]) -> Option<Vec<(String, u32)>> {
    Some(pairs.iter().map(|(n, w)| (n.to_string(), *w)).collect())
}

#[tokio::test]
async fn subscriber_gets_services_endpoints_and_split_then_updates_and_deletions() -> Result<()> {
    let env = env().await?;
    let client = env.client();
    let ns = env.create_namespace("stream").await?;
    let client_pod = shop(&client, &ns).await?;
    create(
        &client,
        &ns,
        &traffic_split(&ns, "canary", "web", &[("web-v1", 90), ("web-v2", 10)]),
    )
    .await?;
    let op = operator(env, Settings::default()).await?;
    let token = pod_token(&client, &ns, "client", &client_pod, AUDIENCE).await?;
    let mut sub = subscribe(&op, &ns, "client-0", Some(&token))
        .await?
        .expect("subscribed");

    let msg = sub
        .until(WAIT, |m| {
            weights(m, &ns, "web") == w(&[("web-v1", 90), ("web-v2", 10)])
        })
        .await?;
    assert_eq!(msg.version, meshlet_crds::contract::config::CONFIG_VERSION);
    let svcs = &msg.config.outbound.services;
    let web = svcs
        .iter()
        .find(|s| s.name == "web" && s.namespace == ns)
        .unwrap();
    assert_eq!(
        web.cluster_ips.len(),
        1,
        "the API server allocated a cluster IP"
    );
    assert!(
        web.authorities.contains(&"web:80".to_string()),
        "same-namespace short name"
    );
    let v1 = svcs
        .iter()
        .find(|s| s.name == "web-v1" && s.namespace == ns)
        .unwrap();
    let ep = &v1.ports[0].endpoints[0];
    assert_eq!(ep.addr.to_string(), "10.9.0.1:8080");
    assert!(ep.meshed);
    assert_eq!(
        ep.identity.as_deref(),
        Some(format!("spiffe://cluster.local/ns/{ns}/sa/web").as_str())
    );
    let v2 = svcs
        .iter()
        .find(|s| s.name == "web-v2" && s.namespace == ns)
        .unwrap();
    assert!(!v2.ports[0].endpoints[0].meshed, "no pod behind it");
    assert_eq!(msg.config.inbound.ports[0].port, 8080);
    assert!(msg.config.inbound.policies.is_empty());

    // A weight change propagates with a higher generation.
    let splits: Api<TrafficSplit> = Api::namespaced(client.clone(), &ns);
    let patch = serde_json::json!({"spec": {"backends": [
        {"service": "web-v1", "weight": 50}, {"service": "web-v2", "weight": 50}]}});
    splits
        .patch("canary", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    let next = sub
        .until(WAIT, |m| {
            weights(m, &ns, "web") == w(&[("web-v1", 50), ("web-v2", 50)])
        })
        .await?;
    assert!(next.generation > msg.generation);

    // Deleting the split restores plain service behaviour.
    splits.delete("canary", &DeleteParams::default()).await?;
    sub.until(WAIT, |m| {
        m.config
            .outbound
            .services
            .iter()
            .any(|s| s.name == "web" && s.namespace == ns && s.split.is_none())
    })
    .await?;
    // Deleting a service removes it.
    Api::<Service>::namespaced(client.clone(), &ns)
        .delete("web-v2", &DeleteParams::default())
        .await?;
    sub.until(WAIT, |m| {
        !m.config
            .outbound
            .services
            .iter()
            .any(|s| s.name == "web-v2" && s.namespace == ns)
    })
    .await?;
    // Unrelated changes elsewhere must not be needed for delivery, and the
    // subscriber count is visible in the metrics.
    let metrics = op.context.metrics.encode();
    assert!(
        metrics.contains("meshlet_operator_subscribers 1"),
        "{metrics}"
    );
    Ok(())
}

#[tokio::test]
async fn subscriptions_are_authenticated() -> Result<()> {
    let env = env().await?;
    let client = env.client();
    let ns = env.create_namespace("auth").await?;
    let client_pod = shop(&client, &ns).await?;
    let op = operator(env, Settings::default()).await?;
    let addr = &op;

    let refused =
        |r: Result<Result<Subscriber, (StatusCode, String)>>| r.unwrap().err().expect("refused");
    let (status, body) = refused(subscribe(addr, &ns, "client-0", None).await);
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.contains("Authorization"), "{body}");

    let (status, _) = refused(subscribe(addr, &ns, "client-0", Some("not-a-token")).await);
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A valid token for another audience is refused.
    let other = pod_token(
        &client,
        &ns,
        "client",
        &client_pod,
        "https://kubernetes.default.svc",
    )
    .await?;
    let (status, body) = refused(subscribe(addr, &ns, "client-0", Some(&other)).await);
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // A token of another ServiceAccount cannot read this pod's config.
    let web_pod = Api::<Pod>::namespaced(client.clone(), &ns)
        .get("web-v1-0")
        .await?;
    let web_token = pod_token(&client, &ns, "web", &web_pod, AUDIENCE).await?;
    let (status, body) = refused(subscribe(addr, &ns, "client-0", Some(&web_token)).await);
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.contains("bound to pod web-v1-0"), "{body}");
    let unbound = token(&client, &ns, "web", None, AUDIENCE).await?;
    let (status, body) = refused(subscribe(addr, &ns, "client-0", Some(&unbound)).await);
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.contains("runs as client"), "{body}");

    // Bad query and unknown pod.
    let token = pod_token(&client, &ns, "client", &client_pod, AUDIENCE).await?;
    let (status, body) = refused(subscribe(addr, &ns, "Bad_Name", Some(&token)).await);
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = refused(subscribe(addr, "nowhere", "ghost", Some(&token)).await);
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the token's namespace is checked first"
    );

    // The right token works.
    let mut sub = subscribe(addr, &ns, "client-0", Some(&token))
        .await?
        .expect("subscribed");
    sub.until(WAIT, |_| true).await?;
    Ok(())
}

#[tokio::test]
async fn misconfigured_split_gets_warning_events() -> Result<()> {
    let env = env().await?;
    let client = env.client();
    let ns = env.create_namespace("events").await?;
    shop(&client, &ns).await?;
    create(
        &client,
        &ns,
        &service(&ns, "other-port", &[("", 9999, 9999)]),
    )
    .await?;
    create(
        &client,
        &ns,
        &traffic_split(
            &ns,
            "broken",
            "web",
            &[("web-v1", 1), ("missing", 1), ("other-port", 1)],
        ),
    )
    .await?;
    create(
        &client,
        &ns,
        &traffic_split(&ns, "zero", "web-v1", &[("web-v2", 0)]),
    )
    .await?;
    create(
        &client,
        &ns,
        &traffic_target(
            &ns,
            "no-routes",
            "web",
            vec![subject(&ns, "client")],
            vec![http_rule("absent", &[])],
        ),
    )
    .await?;
    let _op = operator(env, Settings::default()).await?;
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    let found = eventually("Warning events", WAIT, || async {
        let list = events.list(&ListParams::default()).await?;
        let got: Vec<(String, String, String)> = list
            .items
            .iter()
            .filter(|e| e.type_.as_deref() == Some("Warning"))
            .map(|e| {
                let regarding = e.regarding.clone().unwrap_or_default();
                (
                    regarding.name.unwrap_or_default(),
                    e.reason.clone().unwrap_or_default(),
                    e.note.clone().unwrap_or_default(),
                )
            })
            .collect();
        let wanted = [
            ("broken", reason::BACKEND_SERVICE_NOT_FOUND),
            ("broken", reason::BACKEND_PORT_MISMATCH),
            ("zero", reason::ALL_WEIGHTS_ZERO),
            ("no-routes", reason::ROUTE_NOT_FOUND),
        ];
        let all = wanted
            .iter()
            .all(|(n, r)| got.iter().any(|g| g.0 == *n && g.1 == *r));
        if !all {
            eprintln!("events so far: {got:?}");
        }
        Ok(all.then_some(got))
    })
    .await?;
    let missing = found
        .iter()
        .find(|g| g.1 == reason::BACKEND_SERVICE_NOT_FOUND)
        .unwrap();
    assert!(
        missing.2.contains("missing") && missing.2.contains("spec.backends[1]"),
        "{missing:?}"
    );
    let regarding = events
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .find_map(|e| e.regarding)
        .unwrap();
    assert_eq!(regarding.kind.as_deref(), Some("TrafficSplit"));
    assert_eq!(
        regarding.api_version.as_deref(),
        Some("split.smi-spec.io/v1alpha4")
    );
    assert!(regarding.uid.is_some());
    Ok(())
}

#[tokio::test]
async fn admin_endpoints_answer() -> Result<()> {
    let env = env().await?;
    let op = operator(env, Settings::default()).await?;
    let get = |path: &'static str| async move {
        let stream = tokio::net::TcpStream::connect(op.admin_addr).await?;
        let (mut sender, conn) =
            hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .handshake::<_, http_body_util::Empty<bytes::Bytes>>(hyper_util::rt::TokioIo::new(
                    stream,
                ))
                .await?;
        tokio::spawn(conn);
        let rsp = sender
            .send_request(
                http::Request::get(format!("http://{}{path}", op.admin_addr))
                    .body(http_body_util::Empty::new())?,
            )
            .await?;
        let status = rsp.status();
        let body = http_body_util::BodyExt::collect(rsp.into_body())
            .await?
            .to_bytes();
        anyhow::Ok((status, String::from_utf8_lossy(&body).into_owned()))
    };
    assert_eq!(get("/healthz").await?.0, StatusCode::OK);
    assert_eq!(get("/readyz").await?.0, StatusCode::OK);
    let (status, metrics) = get("/metrics").await?;
    assert_eq!(status, StatusCode::OK);
    for name in [
        "meshlet_operator_recomputes_total",
        "meshlet_operator_watch_events_total{kind=\"Service\"}",
        "meshlet_operator_leader 1",
    ] {
        assert!(metrics.contains(name), "{name} missing in {metrics}");
    }
    assert_eq!(get("/nope").await?.0, StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test]
async fn one_of_two_replicas_leads_and_the_other_takes_over() -> Result<()> {
    let env = env().await?;
    let ns = env.create_namespace("lease").await?;
    let settings = |id: &str| Settings {
        leader: Some(LeaderSettings {
            namespace: ns.clone(),
            name: "meshlet-operator".into(),
            identity: id.into(),
            duration: Duration::from_secs(2),
            renew: Duration::from_millis(300),
        }),
        ..Settings::default()
    };
    let a = operator(env, settings("a")).await?;
    let b = operator(env, settings("b")).await?;
    let leaders = || [*a.context.leader.borrow(), *b.context.leader.borrow()];
    let both = eventually("one leader", WAIT, || async {
        let l = leaders();
        Ok((l[0] ^ l[1]).then_some(l))
    })
    .await?;
    // Stays exactly one over several renewals.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(leaders(), both, "leadership must not flap");
    }
    let (leader, follower) = if both[0] { (a, b) } else { (b, a) };
    drop(leader);
    eventually("takeover", WAIT, || async {
        Ok((*follower.context.leader.borrow()).then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn only_the_affected_workload_gets_an_update() -> Result<()> {
    let env = env().await?;
    let client = env.client();
    let ns = env.create_namespace("targeted").await?;
    let client_pod = shop(&client, &ns).await?;
    let web_pod = Api::<Pod>::namespaced(client.clone(), &ns)
        .get("web-v1-0")
        .await?;
    let op = operator(env, Settings::default()).await?;
    let client_token = pod_token(&client, &ns, "client", &client_pod, AUDIENCE).await?;
    let web_token = pod_token(&client, &ns, "web", &web_pod, AUDIENCE).await?;
    let mut client_sub = subscribe(&op, &ns, "client-0", Some(&client_token))
        .await?
        .expect("subscribed");
    let mut web_sub = subscribe(&op, &ns, "web-v1-0", Some(&web_token))
        .await?
        .expect("subscribed");
    let client_before = client_sub.until(WAIT, |_| true).await?;
    let before = web_sub.until(WAIT, |_| true).await?;
    assert!(
        before.config.inbound.policies.is_empty(),
        "denied by default"
    );

    // Allowing client → web changes web's inbound side only.
    create(
        &client,
        &ns,
        &http_route_group(
            &ns,
            "api",
            &[("read", meshlet_crds::specs::HttpMethod::Get, "/api/.*")],
        ),
    )
    .await?;
    create(
        &client,
        &ns,
        &traffic_target(
            &ns,
            "client-to-web",
            "web",
            vec![subject(&ns, "client")],
            vec![http_rule("api", &["read"])],
        ),
    )
    .await?;
    let after = web_sub
        .until(WAIT, |m| !m.config.inbound.policies.is_empty())
        .await?;
    let policy = &after.config.inbound.policies[0];
    assert_eq!(policy.name, "client-to-web");
    assert_eq!(
        policy.sources,
        [format!("spiffe://cluster.local/ns/{ns}/sa/client")]
    );
    assert_eq!(policy.http[0].path_regex.as_deref(), Some("/api/.*"));
    // The client's config did not change, so it got nothing. Other tests
    // change services concurrently, so only a message whose own namespace
    // part and inbound side are unchanged would be a spurious push; check
    // that whatever arrived differs from the last one in what it carries.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut last = Some(client_before);
    while let Ok(msg) = client_sub.messages.try_recv() {
        if let Some(prev) = &last {
            assert_ne!(prev.config, msg.config, "a push without a change");
        }
        assert!(msg.config.inbound.policies.is_empty());
        last = Some(msg);
    }
    Ok(())
}
