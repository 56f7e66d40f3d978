//! The SMI validation rules, one test per rule, across the versions where
//! the rule's field paths differ. Each message must name the field.

use meshlet_webhook::validate::{validate, Violation};
use serde_json::{json, Value};

fn fields(v: &[Violation]) -> Vec<&str> {
    v.iter().map(|v| v.field.as_str()).collect()
}

fn split(version: &str, backends: Value) -> Value {
    json!({
        "apiVersion": format!("split.smi-spec.io/{version}"),
        "kind": "TrafficSplit",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"service": "web", "backends": backends}
    })
}

#[test]
fn valid_objects_of_every_version_pass() {
    let w = |a: Value, b: Value| json!([{"service": "web-v1", "weight": a}, {"service": "web-v2", "weight": b}]);
    assert_eq!(
        validate(&split("v1alpha1", w(json!("500m"), json!("500m"))), "shop"),
        vec![]
    );
    for v in ["v1alpha2", "v1alpha3", "v1alpha4"] {
        assert_eq!(
            validate(&split(v, w(json!(90), json!(10))), "shop"),
            vec![],
            "{v}"
        );
    }
    assert_eq!(
        validate(
            &json!({
                "apiVersion": "access.smi-spec.io/v1alpha1", "kind": "TrafficTarget",
                "metadata": {"name": "t", "namespace": "shop"},
                "destination": {"kind": "ServiceAccount", "name": "web", "namespace": "shop"},
                "sources": [{"kind": "ServiceAccount", "name": "client", "namespace": "other"}],
                "specs": [{"kind": "HTTPRouteGroup", "name": "routes", "matches": ["api"]}]
            }),
            "shop"
        ),
        vec![]
    );
    assert_eq!(
        validate(
            &json!({
                "apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "HTTPRouteGroup",
                "metadata": {"name": "routes", "namespace": "shop"},
                "spec": {"matches": [{"name": "api", "pathRegex": "/api/.*", "methods": ["GET"], "headers": [{"user-agent": ".*Android.*"}]}]}
            }),
            "shop"
        ),
        vec![]
    );
}

#[test]
fn negative_weights_name_the_backend_and_say_how_to_drain() {
    for (version, weight) in [
        ("v1alpha1", json!("-1")),
        ("v1alpha2", json!(-1)),
        ("v1alpha4", json!(-5)),
    ] {
        let v = validate(
            &split(
                version,
                json!([{"service": "a", "weight": 1}, {"service": "b", "weight": weight}]),
            ),
            "shop",
        );
        assert_eq!(fields(&v), ["spec.backends[1].weight"], "{version}");
        assert_eq!(
            v[0].to_string(),
            "spec.backends[1].weight: must be ≥ 0; set it to 0 to drain this backend"
        );
    }
}

#[test]
fn all_zero_weights_are_refused() {
    let v = validate(
        &split(
            "v1alpha4",
            json!([{"service": "a", "weight": 0}, {"service": "b", "weight": 0}]),
        ),
        "shop",
    );
    assert_eq!(fields(&v), ["spec.backends"]);
    assert!(v[0].message.contains("every weight is 0"), "{}", v[0]);
    let v = validate(
        &split("v1alpha1", json!([{"service": "a", "weight": "0"}])),
        "shop",
    );
    assert_eq!(fields(&v), ["spec.backends"]);
}

#[test]
fn duplicate_backends_and_self_reference() {
    let v = validate(
        &split(
            "v1alpha3",
            json!([{"service": "a", "weight": 1}, {"service": "a", "weight": 2}]),
        ),
        "shop",
    );
    assert_eq!(fields(&v), ["spec.backends[1].service"]);
    assert!(
        v[0].message.contains("already listed at spec.backends[0]"),
        "{}",
        v[0]
    );

    let v = validate(
        &split(
            "v1alpha2",
            json!([{"service": "web", "weight": 1}, {"service": "b", "weight": 1}]),
        ),
        "shop",
    );
    assert_eq!(fields(&v), ["spec.backends[0].service"]);
    assert!(v[0].message.contains("own root service"), "{}", v[0]);

    let v = validate(&split("v1alpha4", json!([])), "shop");
    assert_eq!(fields(&v), ["spec.backends"]);
}

#[test]
fn split_matches_must_name_specs_route_groups() {
    let mut obj = split("v1alpha4", json!([{"service": "a", "weight": 1}]));
    obj["spec"]["matches"] = json!([
        {"kind": "HTTPRouteGroup", "name": "r", "apiGroup": "example.com"},
        {"kind": "HTTPRouteGroup", "name": "r"}
    ]);
    let v = validate(&obj, "shop");
    assert_eq!(
        fields(&v),
        ["spec.matches[0].apiGroup", "spec.matches[1].name"]
    );
    obj["spec"]["matches"] = json!([{"kind": "TCPRoute", "name": "r"}]);
    let v = validate(&obj, "shop");
    assert_eq!(fields(&v), ["spec.matches[0].kind"], "{v:?}");
}

fn target(version: &str, destination: Value, sources: Value, rules: Value) -> Value {
    if version == "v1alpha1" {
        json!({
            "apiVersion": "access.smi-spec.io/v1alpha1", "kind": "TrafficTarget",
            "metadata": {"name": "t", "namespace": "shop"},
            "destination": destination, "sources": sources, "specs": rules
        })
    } else {
        json!({
            "apiVersion": format!("access.smi-spec.io/{version}"), "kind": "TrafficTarget",
            "metadata": {"name": "t", "namespace": "shop"},
            "spec": {"destination": destination, "sources": sources, "rules": rules}
        })
    }
}

#[test]
fn traffic_target_identities_are_service_accounts() {
    for (version, prefix) in [
        ("v1alpha1", ""),
        ("v1alpha2", "spec."),
        ("v1alpha3", "spec."),
    ] {
        let v = validate(
            &target(
                version,
                json!({"kind": "Pod", "name": "web"}),
                json!([{"kind": "ServiceAccount", "name": "a"}, {"kind": "User", "name": "b"}]),
                json!([{"kind": "HTTPRouteGroup", "name": "r"}]),
            ),
            "shop",
        );
        assert_eq!(
            fields(&v),
            [
                format!("{prefix}destination.kind"),
                format!("{prefix}sources[1].kind")
            ],
            "{version}"
        );
    }
}

#[test]
fn traffic_target_destination_lives_in_its_namespace() {
    let sa = |ns: Option<&str>| match ns {
        Some(ns) => json!({"kind": "ServiceAccount", "name": "web", "namespace": ns}),
        None => json!({"kind": "ServiceAccount", "name": "web"}),
    };
    let sources = json!([{"kind": "ServiceAccount", "name": "client", "namespace": "elsewhere"}]);
    let rules = json!([{"kind": "TCPRoute", "name": "tcp"}]);
    assert_eq!(
        validate(
            &target("v1alpha3", sa(None), sources.clone(), rules.clone()),
            "shop"
        ),
        vec![]
    );
    assert_eq!(
        validate(
            &target("v1alpha3", sa(Some("shop")), sources.clone(), rules.clone()),
            "shop"
        ),
        vec![]
    );
    let v = validate(
        &target(
            "v1alpha3",
            sa(Some("other")),
            sources.clone(),
            rules.clone(),
        ),
        "shop",
    );
    assert_eq!(fields(&v), ["spec.destination.namespace"]);
    assert!(
        v[0].message.contains("\"other\"") && v[0].message.contains("\"shop\""),
        "{}",
        v[0]
    );
    let v = validate(
        &target("v1alpha1", sa(Some("other")), sources, rules),
        "shop",
    );
    assert_eq!(fields(&v), ["destination.namespace"]);
}

#[test]
fn traffic_target_rule_kinds() {
    let d = json!({"kind": "ServiceAccount", "name": "web"});
    let s = json!([{"kind": "ServiceAccount", "name": "c"}]);
    // UDPRoute exists from v1alpha3 only.
    assert_eq!(
        validate(
            &target(
                "v1alpha3",
                d.clone(),
                s.clone(),
                json!([{"kind": "UDPRoute", "name": "u"}])
            ),
            "shop"
        ),
        vec![]
    );
    let v = validate(
        &target(
            "v1alpha2",
            d.clone(),
            s.clone(),
            json!([{"kind": "UDPRoute", "name": "u"}]),
        ),
        "shop",
    );
    assert_eq!(fields(&v), ["spec.rules[0].kind"], "{v:?}");
    let v = validate(
        &target(
            "v1alpha1",
            d.clone(),
            s.clone(),
            json!([{"kind": "Service", "name": "u"}]),
        ),
        "shop",
    );
    assert_eq!(fields(&v), ["specs[0].kind"], "{v:?}");
    let v = validate(
        &target(
            "v1alpha3",
            d,
            s,
            json!([{"kind": "HTTPRouteGroup", "name": "r", "matches": ["a", ""]}]),
        ),
        "shop",
    );
    assert_eq!(fields(&v), ["spec.rules[0].matches"]);
}

#[test]
fn route_group_regexes_compile() {
    let v1 = json!({
        "apiVersion": "specs.smi-spec.io/v1alpha2", "kind": "HTTPRouteGroup",
        "metadata": {"name": "r", "namespace": "shop"},
        "matches": [
            {"name": "ok", "pathRegex": "/ok"},
            {"name": "bad", "pathRegex": "/api/(", "headers": {"x-user": "[a-"}}
        ]
    });
    let v = validate(&v1, "shop");
    assert_eq!(
        fields(&v),
        ["matches[1].pathRegex", "matches[1].headers[\"x-user\"]"]
    );
    assert!(
        v[0].message.contains("not a valid regular expression"),
        "{}",
        v[0]
    );

    let v4 = json!({
        "apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "HTTPRouteGroup",
        "metadata": {"name": "r", "namespace": "shop"},
        "spec": {"matches": [{"name": "a", "pathRegex": "*"}, {"name": "a"}]}
    });
    let v = validate(&v4, "shop");
    assert_eq!(
        fields(&v),
        ["spec.matches[0].pathRegex", "spec.matches[1].name"]
    );
}

#[test]
fn port_routes_list_each_port_once() {
    for kind in ["TCPRoute", "UDPRoute"] {
        let obj = json!({
            "apiVersion": "specs.smi-spec.io/v1alpha4", "kind": kind,
            "metadata": {"name": "r", "namespace": "shop"},
            "spec": {"matches": {"name": "db", "ports": [5432, 5433, 5432]}}
        });
        let v = validate(&obj, "shop");
        assert_eq!(fields(&v), ["spec.matches.ports[2]"], "{kind}");
    }
}

#[test]
fn unreadable_objects_name_the_field() {
    let v = validate(
        &split("v1alpha2", json!([{"service": "a", "weight": "ten"}])),
        "shop",
    );
    assert_eq!(fields(&v), ["spec.backends[0].weight"], "{v:?}");
    let v = validate(&split("v9", json!([])), "shop");
    assert_eq!(fields(&v), ["."]);
    assert!(v[0].message.contains("v9"), "{}", v[0]);
}
