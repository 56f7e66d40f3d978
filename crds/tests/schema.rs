//! The generated CRD schemas, checked with a JSON Schema validator: they
//! accept every example of the SMI specification text and of the upstream
//! CRDs' shapes, and reject obviously bad objects at the offending field.
//!
//! A real API server test (the lead's, on the StorageOnly/Full renders) is
//! the final word; this is the cheap, fast rung below it. The Kubernetes
//! extensions are mapped to JSON Schema the way the API server reads them:
//! `nullable: true` admits null, `x-kubernetes-int-or-string` admits an
//! integer or a string, `x-kubernetes-preserve-unknown-fields` admits
//! anything.

use meshlet_crds::manifests::{self, CrdRender};
use serde_json::Value;

/// Translates the Kubernetes extensions of a structural schema to plain
/// JSON Schema.
fn to_json_schema(schema: &mut Value) {
    if let Some(map) = schema.as_object_mut() {
        if map.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
            map.insert("type".into(), serde_json::json!(["integer", "string"]));
        }
        if map.remove("nullable") == Some(Value::Bool(true)) {
            if let Some(Value::String(t)) = map.get("type").cloned() {
                map.insert("type".into(), serde_json::json!([t, "null"]));
            }
        }
        for value in map.values_mut() {
            to_json_schema(value);
        }
    } else if let Some(items) = schema.as_array_mut() {
        for item in items {
            to_json_schema(item);
        }
    }
}

fn validator(api_version: &str, kind: &str) -> jsonschema::Validator {
    let (group, version) = api_version.split_once('/').unwrap();
    let crd = manifests::all(CrdRender::Full)
        .into_iter()
        .find(|c| c.spec.group == group && c.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("no CRD for {kind} in {group}"));
    let v = crd
        .spec
        .versions
        .iter()
        .find(|v| v.name == version)
        .unwrap_or_else(|| panic!("{kind}: no version {version}"));
    let mut schema = serde_json::to_value(
        v.schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap(),
    )
    .unwrap();
    to_json_schema(&mut schema);
    jsonschema::validator_for(&schema).unwrap()
}

/// Every document of a multi-document YAML stream, as JSON.
fn docs(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|d| <Value as serde::Deserialize>::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// Validation errors of `obj` as `instance-path: message` lines.
fn errors(obj: &Value) -> Vec<String> {
    let v = validator(
        obj["apiVersion"].as_str().unwrap(),
        obj["kind"].as_str().unwrap(),
    );
    v.iter_errors(obj)
        .map(|e| format!("{}: {}", e.instance_path(), e))
        .collect()
}

fn assert_all_valid(yaml: &str) {
    let docs = docs(yaml);
    assert!(!docs.is_empty());
    for obj in docs {
        let errs = errors(&obj);
        assert!(
            errs.is_empty(),
            "{} {} rejected: {errs:?}",
            obj["apiVersion"],
            obj["metadata"]["name"]
        );
    }
}

/// `yaml` (one document) is rejected, with an error at `path`.
fn assert_rejected_at(yaml: &str, path: &str) {
    let obj = docs(yaml).pop().unwrap();
    let errs = errors(&obj);
    assert!(
        errs.iter().any(|e| e.starts_with(&format!("{path}:"))),
        "expected an error at {path}, got {errs:?}"
    );
}

// --- TrafficSplit -------------------------------------------------------

#[test]
fn split_v1alpha1_examples() {
    assert_all_valid(
        r#"
apiVersion: split.smi-spec.io/v1alpha1
kind: TrafficSplit
metadata: {name: canary}
spec:
  service: website
  backends:
  - service: website-v1
    weight: 500m
  - service: website-v2
    weight: 500m
---
apiVersion: split.smi-spec.io/v1alpha1
kind: TrafficSplit
metadata: {name: foobar-rollout}
spec:
  service: foobar
  backends:
  - service: foobar-v1
    weight: 1
  - service: foobar-v2
    weight: "0"
---
apiVersion: split.smi-spec.io/v1alpha1
kind: TrafficSplit
metadata: {name: decimals}
spec:
  service: foobar
  backends:
  - service: foobar-v1
    weight: "1.5"
  - service: foobar-v2
    weight: 2k
"#,
    );
}

#[test]
fn split_v1alpha2_to_v1alpha4_examples() {
    for version in ["v1alpha2", "v1alpha3", "v1alpha4"] {
        assert_all_valid(&format!(
            r#"
apiVersion: split.smi-spec.io/{version}
kind: TrafficSplit
metadata: {{name: canary}}
spec:
  # The root service that clients use to connect to the destination application.
  service: website
  # Services inside the namespace with their own selectors, endpoints and configuration.
  backends:
  - service: website-v1
    weight: 90
  - service: website-v2
    weight: 10
---
apiVersion: split.smi-spec.io/{version}
kind: TrafficSplit
metadata: {{name: foobar-rollout}}
spec:
  service: foobar
  backends:
  - service: foobar-v1
    weight: 1000
  - service: foobar-v2
    weight: 500
---
apiVersion: split.smi-spec.io/{version}
kind: TrafficSplit
metadata: {{name: my-split}}
spec:
  service: foobar
  backends:
  - service: foobar-next
    weight: 100
  - service: foobar
    weight: 900
"#
        ));
    }
    for version in ["v1alpha3", "v1alpha4"] {
        assert_all_valid(&format!(
            r#"
apiVersion: split.smi-spec.io/{version}
kind: TrafficSplit
metadata: {{name: ab-test}}
spec:
  service: website
  matches:
  - kind: HTTPRouteGroup
    name: ab-test
  backends:
  - service: website-v1
    weight: 0
  - service: website-v2
    weight: 100
---
apiVersion: split.smi-spec.io/{version}
kind: TrafficSplit
metadata: {{name: ab-test-typed}}
spec:
  service: website
  matches:
  - apiGroup: specs.smi-spec.io
    kind: HTTPRouteGroup
    name: ab-test
  backends:
  - service: website-v2
    weight: 1
"#
        ));
    }
}

#[test]
fn split_rejects_missing_service() {
    assert_rejected_at(
        "apiVersion: split.smi-spec.io/v1alpha4\nkind: TrafficSplit\nmetadata: {name: x}\nspec:\n  backends: [{service: a, weight: 1}]\n",
        "/spec",
    );
    assert_rejected_at(
        "apiVersion: split.smi-spec.io/v1alpha4\nkind: TrafficSplit\nmetadata: {name: x}\nspec:\n  service: web\n  backends: [{weight: 1}]\n",
        "/spec/backends/0",
    );
}

#[test]
fn split_rejects_negative_weights_in_every_version() {
    for version in ["v1alpha2", "v1alpha3", "v1alpha4"] {
        assert_rejected_at(
            &format!("apiVersion: split.smi-spec.io/{version}\nkind: TrafficSplit\nmetadata: {{name: x}}\nspec:\n  service: web\n  backends: [{{service: a, weight: -1}}]\n"),
            "/spec/backends/0/weight",
        );
    }
    for weight in ["-1", "\"-500m\"", "\"abc\"", "1.5", "\"1x\""] {
        assert_rejected_at(
            &format!("apiVersion: split.smi-spec.io/v1alpha1\nkind: TrafficSplit\nmetadata: {{name: x}}\nspec:\n  service: web\n  backends: [{{service: a, weight: {weight}}}]\n"),
            "/spec/backends/0/weight",
        );
    }
}

#[test]
fn split_rejects_fractional_weights_and_unknown_match_kinds() {
    assert_rejected_at(
        "apiVersion: split.smi-spec.io/v1alpha4\nkind: TrafficSplit\nmetadata: {name: x}\nspec:\n  service: web\n  backends: [{service: a, weight: 1.5}]\n",
        "/spec/backends/0/weight",
    );
    assert_rejected_at(
        "apiVersion: split.smi-spec.io/v1alpha4\nkind: TrafficSplit\nmetadata: {name: x}\nspec:\n  service: web\n  matches: [{kind: TCPRoute, name: r}]\n  backends: [{service: a, weight: 1}]\n",
        "/spec/matches/0/kind",
    );
}

// --- TrafficTarget ------------------------------------------------------

#[test]
fn access_v1alpha1_examples() {
    assert_all_valid(
        r#"
apiVersion: access.smi-spec.io/v1alpha1
kind: TrafficTarget
metadata:
  name: path-specific
  namespace: default
destination:
  kind: ServiceAccount
  name: service-a
  namespace: default
  port: 8080
specs:
- kind: HTTPRouteGroup
  name: the-routes
  matches:
  - metrics
sources:
- kind: ServiceAccount
  name: prometheus
  namespace: default
---
apiVersion: access.smi-spec.io/v1alpha1
kind: TrafficTarget
metadata:
  name: api-service-metrics
  namespace: default
destination:
  kind: ServiceAccount
  name: api-service
  namespace: default
specs:
- kind: HTTPRouteGroup
  name: api-service-routes
  matches:
  - metrics
sources:
- kind: ServiceAccount
  name: prometheus
  namespace: default
---
apiVersion: access.smi-spec.io/v1alpha1
kind: TrafficTarget
metadata:
  name: api-service-api
  namespace: default
destination:
  kind: ServiceAccount
  name: api-service
  namespace: default
  port: 8080
specs:
- kind: HTTPRouteGroup
  name: api-service-routes
  matches:
  - api
sources:
- kind: ServiceAccount
  name: website-service
  namespace: default
- kind: ServiceAccount
  name: payments-service
  namespace: default
"#,
    );
}

#[test]
fn access_v1alpha2_examples() {
    assert_all_valid(
        r#"
apiVersion: access.smi-spec.io/v1alpha2
kind: TrafficTarget
metadata:
  name: path-specific
  namespace: default
spec:
  destination:
    kind: ServiceAccount
    name: service-a
    namespace: default
    port: 8080
  rules:
  - kind: HTTPRouteGroup
    name: the-routes
    matches:
    - metrics
  sources:
  - kind: ServiceAccount
    name: prometheus
    namespace: default
---
apiVersion: access.smi-spec.io/v1alpha2
kind: TrafficTarget
metadata:
  name: api-service-metrics
  namespace: default
spec:
  destination:
    kind: ServiceAccount
    name: api-service
    namespace: default
  rules:
  - kind: HTTPRouteGroup
    name: api-service-routes
    matches:
    - metrics
  sources:
  - kind: ServiceAccount
    name: prometheus
    namespace: default
"#,
    );
}

#[test]
fn access_v1alpha3_examples() {
    assert_all_valid(
        r#"
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata:
  name: path-specific
  namespace: default
spec:
  destination:
    kind: ServiceAccount
    name: service-a
    namespace: default
  rules:
  - kind: TCPRoute
    name: the-routes
  - kind: HTTPRouteGroup
    name: the-routes
    matches:
    - metrics
  sources:
  - kind: ServiceAccount
    name: prometheus
    namespace: default
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata:
  name: protocal-specific
spec:
  destination:
    kind: ServiceAccount
    name: server
    namespace: default
  rules:
  - kind: TCPRoute
    name: tcp-ports
  - kind: UDPRoute
    name: udp-ports
  sources:
  - kind: ServiceAccount
    name: client
    namespace: default
"#,
    );
}

#[test]
fn access_rejects_unknown_rule_kinds_per_version() {
    assert_rejected_at(
        "apiVersion: access.smi-spec.io/v1alpha3\nkind: TrafficTarget\nmetadata: {name: x}\nspec:\n  destination: {kind: ServiceAccount, name: a}\n  rules: [{kind: GRPCRoute, name: r}]\n  sources: [{kind: ServiceAccount, name: b}]\n",
        "/spec/rules/0/kind",
    );
    // UDPRoute arrived with v1alpha3.
    assert_rejected_at(
        "apiVersion: access.smi-spec.io/v1alpha2\nkind: TrafficTarget\nmetadata: {name: x}\nspec:\n  destination: {kind: ServiceAccount, name: a}\n  rules: [{kind: UDPRoute, name: r}]\n",
        "/spec/rules/0/kind",
    );
    assert_rejected_at(
        "apiVersion: access.smi-spec.io/v1alpha1\nkind: TrafficTarget\nmetadata: {name: x}\ndestination: {kind: ServiceAccount, name: a}\nspecs: [{kind: UDPRoute, name: r}]\n",
        "/specs/0/kind",
    );
}

#[test]
fn access_rejects_missing_fields_and_bad_ports() {
    assert_rejected_at(
        "apiVersion: access.smi-spec.io/v1alpha3\nkind: TrafficTarget\nmetadata: {name: x}\nspec:\n  destination: {kind: ServiceAccount, name: a}\n  rules: []\n",
        "/spec",
    );
    assert_rejected_at(
        "apiVersion: access.smi-spec.io/v1alpha1\nkind: TrafficTarget\nmetadata: {name: x}\nspecs: []\n",
        "",
    );
    assert_rejected_at(
        "apiVersion: access.smi-spec.io/v1alpha2\nkind: TrafficTarget\nmetadata: {name: x}\nspec:\n  destination: {kind: ServiceAccount, name: a, port: 70000}\n",
        "/spec/destination/port",
    );
}

// --- HTTPRouteGroup, TCPRoute, UDPRoute ---------------------------------

#[test]
fn http_route_group_v1alpha1_and_v1alpha2_examples() {
    for version in ["v1alpha1", "v1alpha2"] {
        assert_all_valid(&format!(
            r#"
apiVersion: specs.smi-spec.io/{version}
kind: HTTPRouteGroup
metadata:
  name: the-routes
matches:
- name: metrics
  pathRegex: "/metrics"
  methods:
  - GET
- name: health
  pathRegex: "/ping"
  methods: ["*"]
---
apiVersion: specs.smi-spec.io/{version}
kind: HTTPRouteGroup
metadata:
  name: the-routes
  namespace: default
matches:
- name: everything
  pathRegex: ".*"
  methods: ["*"]
"#
        ));
    }
    // Headers from v1alpha2 on, in both shapes (the split spec's A/B example
    // uses the list form).
    assert_all_valid(
        r#"
apiVersion: specs.smi-spec.io/v1alpha2
kind: HTTPRouteGroup
metadata:
  name: ab-test
matches:
- name: firefox-users
  headers:
  - user-agent: ".*Firefox.*"
---
apiVersion: specs.smi-spec.io/v1alpha2
kind: HTTPRouteGroup
metadata:
  name: ab-test
matches:
- name: firefox-users
  headers:
    user-agent: ".*Firefox.*"
"#,
    );
}

#[test]
fn http_route_group_v1alpha3_and_v1alpha4_examples() {
    for version in ["v1alpha3", "v1alpha4"] {
        assert_all_valid(&format!(
            r#"
apiVersion: specs.smi-spec.io/{version}
kind: HTTPRouteGroup
metadata:
  name: the-routes
spec:
  matches:
  - name: metrics
    pathRegex: "/metrics"
    methods:
    - GET
  - name: health
    pathRegex: "/ping"
    methods: ["*"]
---
apiVersion: specs.smi-spec.io/{version}
kind: HTTPRouteGroup
metadata:
  name: the-routes
  namespace: default
spec:
  matches:
  - name: android-insiders
    headers:
      user-agent: ".*Android.*"
      cookie: "^(.*?;)?(type=insider)(;.*)?$"
  - name: firefox-users
    headers:
      user-agent: ".*Firefox.*"
---
apiVersion: specs.smi-spec.io/{version}
kind: HTTPRouteGroup
metadata:
  name: the-routes
spec:
  matches:
  - name: iphone-users
    pathRegex: "/api/.*"
    methods:
    - GET
    - HEAD
    headers:
    - user-agent: ".*iPhone.*"
"#
        ));
    }
}

#[test]
fn http_route_group_rejects_bad_methods_and_nameless_matches() {
    assert_rejected_at(
        "apiVersion: specs.smi-spec.io/v1alpha4\nkind: HTTPRouteGroup\nmetadata: {name: x}\nspec:\n  matches: [{name: a, methods: [FETCH]}]\n",
        "/spec/matches/0/methods/0",
    );
    assert_rejected_at(
        "apiVersion: specs.smi-spec.io/v1alpha1\nkind: HTTPRouteGroup\nmetadata: {name: x}\nmatches: [{pathRegex: /}]\n",
        "/matches/0",
    );
}

#[test]
fn tcp_and_udp_route_examples() {
    assert_all_valid(
        r#"
apiVersion: specs.smi-spec.io/v1alpha1
kind: TCPRoute
metadata:
  name: tcp-route
---
apiVersion: specs.smi-spec.io/v1alpha2
kind: TCPRoute
metadata:
  name: tcp-route
---
apiVersion: specs.smi-spec.io/v1alpha3
kind: TCPRoute
metadata:
  name: tcp-route
spec: {}
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: TCPRoute
metadata:
  name: the-routes
spec:
  matches:
    ports:
    - 3306
    - 6446
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: TCPRoute
metadata:
  name: the-routes
spec:
  matches:
    ports: []
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: UDPRoute
metadata:
  name: the-routes
spec:
  matches:
    ports:
    - 989
    - 990
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: UDPRoute
metadata:
  name: the-routes
spec:
  matches:
    ports: []
"#,
    );
}

#[test]
fn tcp_route_rejects_bad_ports() {
    assert_rejected_at(
        "apiVersion: specs.smi-spec.io/v1alpha4\nkind: TCPRoute\nmetadata: {name: x}\nspec:\n  matches: {ports: [0]}\n",
        "/spec/matches/ports/0",
    );
    assert_rejected_at(
        "apiVersion: specs.smi-spec.io/v1alpha4\nkind: UDPRoute\nmetadata: {name: x}\nspec:\n  matches: {}\n",
        "/spec/matches",
    );
}

/// Every example above also reads into the Rust type of its version, and
/// the examples' typed round trip agrees with the schema (what the types
/// write, the schema accepts).
#[test]
fn schema_accepts_what_the_types_write() {
    use meshlet_crds::conversion::convert;
    let samples = [
        "apiVersion: split.smi-spec.io/v1alpha1\nkind: TrafficSplit\nmetadata: {name: x}\nspec:\n  service: web\n  backends: [{service: a, weight: 1}, {service: b, weight: 500m}]\n",
        "apiVersion: access.smi-spec.io/v1alpha1\nkind: TrafficTarget\nmetadata: {name: x}\ndestination: {kind: ServiceAccount, name: a, port: 80}\nspecs: [{kind: TCPRoute, name: t}]\nsources: [{kind: ServiceAccount, name: b}]\n",
        "apiVersion: specs.smi-spec.io/v1alpha2\nkind: HTTPRouteGroup\nmetadata: {name: x}\nmatches: [{name: m, headers: {a: b}, methods: ['*']}]\n",
        "apiVersion: specs.smi-spec.io/v1alpha1\nkind: TCPRoute\nmetadata: {name: x}\n",
    ];
    for sample in samples {
        let obj = docs(sample).pop().unwrap();
        let (group, _) = obj["apiVersion"].as_str().unwrap().split_once('/').unwrap();
        let versions: &[&str] = match group {
            "split.smi-spec.io" => meshlet_crds::split::VERSIONS,
            "access.smi-spec.io" => meshlet_crds::access::VERSIONS,
            _ => meshlet_crds::specs::HTTP_ROUTE_GROUP_VERSIONS,
        };
        for version in versions {
            let out = convert(&obj, &format!("{group}/{version}")).unwrap();
            let errs = errors(&out);
            assert!(errs.is_empty(), "{group}/{version}: {errs:?}\n{out:#}");
        }
    }
}
