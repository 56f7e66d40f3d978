//! Version conversion: round trips (property-based) for every kind and
//! version, the conversion-data annotation, the quantity rule, and errors.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use meshlet_crds::access::{self, convert::TrafficTargetConversion};
use meshlet_crds::contract::annotations::CONVERSION_DATA;
use meshlet_crds::conversion::{convert, to_hub_value, ConversionError, KindConversion};
use meshlet_crds::quantity::Quantity;
use meshlet_crds::specs::convert::{HttpRouteGroupConversion, TcpRouteConversion};
use meshlet_crds::specs::headers::HttpHeaders;
use meshlet_crds::specs::{self, HttpMethod};
use meshlet_crds::split::{self, convert::TrafficSplitConversion};
use proptest::prelude::*;
use serde_json::{json, Value};

// --- strategies ---------------------------------------------------------

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,8}"
}

fn metadata() -> impl Strategy<Value = ObjectMeta> {
    (
        name(),
        proptest::option::of(name()),
        proptest::option::of(proptest::collection::btree_map(name(), name(), 1..3)),
        proptest::option::of(proptest::collection::btree_map(
            "[a-z]{1,5}\\.io/[a-z]{1,5}",
            ".{0,8}",
            1..3,
        )),
    )
        .prop_map(|(name, namespace, labels, annotations)| ObjectMeta {
            name: Some(name),
            namespace,
            labels,
            annotations,
            ..Default::default()
        })
}

fn weight() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..2000,
        (0u64..1_000_000).prop_map(|n| n * 1000),
        0u64..10_000_000_000
    ]
}

/// A v1alpha1 quantity text for a milli value, written in one of several
/// equivalent ways.
fn quantity() -> impl Strategy<Value = Quantity> {
    (weight(), 0..4u8).prop_map(|(milli, style)| {
        Quantity(match style {
            0 => Quantity::from_milli(milli).0,
            1 => format!("{milli}m"),
            2 => format!("{}.{:03}", milli / 1000, milli % 1000),
            _ if milli % 1000 == 0 && milli % 1_000_000 == 0 => format!("{}k", milli / 1_000_000),
            _ => format!("{}", milli as f64 / 1000.0),
        })
    })
}

fn headers() -> impl Strategy<Value = HttpHeaders> {
    proptest::collection::btree_map("[a-z][a-z-]{0,8}", "[ -~]{0,10}", 0..3).prop_map(HttpHeaders)
}

fn methods() -> impl Strategy<Value = Vec<HttpMethod>> {
    proptest::collection::vec(
        prop_oneof![
            Just(HttpMethod::Any),
            Just(HttpMethod::Get),
            Just(HttpMethod::Post),
            Just(HttpMethod::Patch),
            Just(HttpMethod::Options)
        ],
        0..3,
    )
}

fn split_hub() -> impl Strategy<Value = split::v1alpha4::TrafficSplit> {
    use split::v1alpha4::*;
    (
        metadata(),
        name(),
        proptest::collection::vec(
            (
                proptest::option::of(Just("specs.smi-spec.io".to_string())),
                name(),
            )
                .prop_map(|(api_group, name)| TrafficSplitMatch {
                    api_group,
                    kind: MatchKind::HttpRouteGroup,
                    name,
                }),
            0..3,
        ),
        proptest::collection::vec(
            (name(), weight())
                .prop_map(|(service, weight)| TrafficSplitBackend { service, weight }),
            0..4,
        ),
    )
        .prop_map(|(metadata, service, matches, backends)| TrafficSplit {
            metadata,
            status: None,
            spec: TrafficSplitSpec {
                service,
                matches,
                backends,
            },
        })
}

fn split_v1alpha1() -> impl Strategy<Value = split::v1alpha1::TrafficSplit> {
    use split::v1alpha1::*;
    (
        metadata(),
        name(),
        proptest::collection::vec(
            (name(), quantity())
                .prop_map(|(service, weight)| TrafficSplitBackend { service, weight }),
            0..4,
        ),
    )
        .prop_map(|(metadata, service, backends)| TrafficSplit {
            metadata,
            status: None,
            spec: TrafficSplitSpec { service, backends },
        })
}

fn split_v1alpha2() -> impl Strategy<Value = split::v1alpha2::TrafficSplit> {
    use split::v1alpha2::*;
    (
        metadata(),
        name(),
        proptest::collection::vec(
            (name(), weight())
                .prop_map(|(service, weight)| TrafficSplitBackend { service, weight }),
            0..4,
        ),
    )
        .prop_map(|(metadata, service, backends)| TrafficSplit {
            metadata,
            status: None,
            spec: TrafficSplitSpec { service, backends },
        })
}

fn subject() -> impl Strategy<Value = (String, String, Option<String>, Option<u16>)> {
    (
        prop_oneof![
            Just("ServiceAccount".to_string()),
            Just("Group".to_string())
        ],
        name(),
        proptest::option::of(name()),
        proptest::option::of(1u16..),
    )
}

fn access_hub() -> impl Strategy<Value = access::v1alpha3::TrafficTarget> {
    use access::v1alpha3::*;
    let subj = || {
        subject().prop_map(|(kind, name, namespace, _)| IdentityBindingSubject {
            kind,
            name,
            namespace,
        })
    };
    (
        metadata(),
        subj(),
        proptest::collection::vec(subj(), 0..3),
        proptest::collection::vec(
            (
                prop_oneof![
                    Just(RuleKind::HttpRouteGroup),
                    Just(RuleKind::TcpRoute),
                    Just(RuleKind::UdpRoute)
                ],
                name(),
                proptest::collection::vec(name(), 0..3),
            )
                .prop_map(|(kind, name, matches)| TrafficTargetRule {
                    kind,
                    name,
                    matches,
                }),
            0..4,
        ),
    )
        .prop_map(|(metadata, destination, sources, rules)| TrafficTarget {
            metadata,
            status: None,
            spec: TrafficTargetSpec {
                destination,
                sources,
                rules,
            },
        })
}

fn rule_kind_v1() -> impl Strategy<Value = access::v1alpha1::RuleKind> {
    prop_oneof![
        Just(access::v1alpha1::RuleKind::HttpRouteGroup),
        Just(access::v1alpha1::RuleKind::TcpRoute)
    ]
}

fn access_v1alpha1() -> impl Strategy<Value = access::v1alpha1::TrafficTarget> {
    use access::v1alpha1::*;
    let subj = || {
        subject().prop_map(|(kind, name, namespace, port)| IdentityBindingSubject {
            kind,
            name,
            namespace,
            port,
        })
    };
    (
        metadata(),
        subj(),
        proptest::collection::vec(subj(), 0..3),
        proptest::collection::vec(
            (
                rule_kind_v1(),
                name(),
                proptest::collection::vec(name(), 0..3),
            )
                .prop_map(|(kind, name, matches)| TrafficTargetSpec {
                    kind,
                    name,
                    matches,
                }),
            0..3,
        ),
    )
        .prop_map(|(metadata, destination, sources, specs)| TrafficTarget {
            metadata,
            status: None,
            spec: TrafficTargetFields {
                destination,
                sources,
                specs,
            },
        })
}

fn access_v1alpha2() -> impl Strategy<Value = access::v1alpha2::TrafficTarget> {
    use access::v1alpha2::*;
    let subj = || {
        subject().prop_map(|(kind, name, namespace, port)| IdentityBindingSubject {
            kind,
            name,
            namespace,
            port,
        })
    };
    (
        metadata(),
        subj(),
        proptest::collection::vec(subj(), 0..3),
        proptest::collection::vec(
            (
                rule_kind_v1(),
                name(),
                proptest::collection::vec(name(), 0..3),
            )
                .prop_map(|(kind, name, matches)| TrafficTargetRule {
                    kind,
                    name,
                    matches,
                }),
            0..3,
        ),
    )
        .prop_map(|(metadata, destination, sources, rules)| TrafficTarget {
            metadata,
            status: None,
            spec: TrafficTargetSpec {
                destination,
                sources,
                rules,
            },
        })
}

fn http_hub() -> impl Strategy<Value = specs::v1alpha4::HttpRouteGroup> {
    use specs::v1alpha4::*;
    (
        metadata(),
        proptest::collection::vec(
            (
                name(),
                methods(),
                proptest::option::of("/[a-z.*]{0,6}"),
                headers(),
            )
                .prop_map(|(name, methods, path_regex, headers)| HttpMatch {
                    name,
                    methods,
                    path_regex,
                    headers,
                }),
            0..3,
        ),
    )
        .prop_map(|(metadata, matches)| HttpRouteGroup {
            metadata,
            spec: HttpRouteGroupSpec { matches },
        })
}

fn http_v1alpha1() -> impl Strategy<Value = specs::v1alpha1::HttpRouteGroup> {
    use specs::v1alpha1::*;
    (
        metadata(),
        proptest::collection::vec(
            (name(), methods(), proptest::option::of("/[a-z.*]{0,6}")).prop_map(
                |(name, methods, path_regex)| HttpMatch {
                    name,
                    methods,
                    path_regex,
                },
            ),
            0..3,
        ),
    )
        .prop_map(|(metadata, matches)| HttpRouteGroup {
            metadata,
            spec: HttpRouteGroupFields { matches },
        })
}

fn tcp_hub() -> impl Strategy<Value = specs::v1alpha4::TcpRoute> {
    use specs::v1alpha4::*;
    (
        metadata(),
        proptest::option::of(name()),
        proptest::collection::vec(1u16.., 0..3),
    )
        .prop_map(|(metadata, name, ports)| TcpRoute {
            metadata,
            spec: TcpRouteSpec {
                matches: PortMatch { name, ports },
            },
        })
}

// --- properties ---------------------------------------------------------

fn api(group: &str, version: &str) -> String {
    format!("{group}/{version}")
}

/// hub → `version` → hub gives the hub back exactly (through the
/// annotation where `version` cannot hold everything), and the plain
/// conversion keeps everything `version` can express.
fn check_hub_round_trip<K: KindConversion>(
    hub: &Value,
    version: &str,
) -> Result<(), TestCaseError> {
    let target = api(K::GROUP, version);
    let old = convert(hub, &target).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(old["apiVersion"].as_str(), Some(target.as_str()));
    let back = convert(&old, hub["apiVersion"].as_str().unwrap()).unwrap();
    prop_assert_eq!(&back, hub);

    // Without the annotation: what the old version holds survives a second trip.
    let plain_old = K::from_hub(
        &K::to_hub(K::VERSIONS.last().unwrap(), hub).unwrap(),
        version,
    )
    .unwrap();
    let plain_again = K::from_hub(&K::to_hub(version, &plain_old).unwrap(), version).unwrap();
    prop_assert_eq!(plain_again, plain_old);
    Ok(())
}

/// `version` → hub → `version` gives the object back exactly.
fn check_old_round_trip<K: KindConversion>(old: &Value) -> Result<(), TestCaseError> {
    let hub_version = api(K::GROUP, K::VERSIONS.last().unwrap());
    let hub = convert(old, &hub_version).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(hub["apiVersion"].as_str(), Some(hub_version.as_str()));
    let back = convert(&hub, old["apiVersion"].as_str().unwrap()).unwrap();
    prop_assert_eq!(&back, old);
    Ok(())
}

fn has_conversion_data(obj: &Value) -> bool {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(CONVERSION_DATA))
        .is_some()
}

fn to_json<T: serde::Serialize>(obj: &T) -> Value {
    serde_json::to_value(obj).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn split_hub_round_trips(hub in split_hub()) {
        let hub = to_json(&hub);
        for version in split::VERSIONS {
            check_hub_round_trip::<TrafficSplitConversion>(&hub, version)?;
        }
        // v1alpha3 has the hub's shape: no annotation needed.
        prop_assert!(!has_conversion_data(&convert(&hub, "split.smi-spec.io/v1alpha3").unwrap()));
    }

    #[test]
    fn split_v1alpha1_round_trips(old in split_v1alpha1()) {
        check_old_round_trip::<TrafficSplitConversion>(&to_json(&old))?;
        // Weights written in canonical form need no annotation: the milli
        // rule alone brings them back.
        let canonical_weights = old
            .spec
            .backends
            .iter()
            .all(|b| Quantity::from_milli(b.weight.to_milli().unwrap()) == b.weight);
        if canonical_weights {
            let hub = convert(&to_json(&old), "split.smi-spec.io/v1alpha4").unwrap();
            prop_assert!(!has_conversion_data(&hub), "{}", hub);
        }
    }

    #[test]
    fn split_v1alpha1_weights_follow_the_milli_rule(old in split_v1alpha1()) {
        let hub = convert(&to_json(&old), "split.smi-spec.io/v1alpha4").unwrap();
        for (i, b) in old.spec.backends.iter().enumerate() {
            prop_assert_eq!(hub["spec"]["backends"][i]["weight"].as_u64(), Some(b.weight.to_milli().unwrap()));
        }
    }

    #[test]
    fn split_v1alpha2_round_trips(old in split_v1alpha2()) {
        let old = to_json(&old);
        check_old_round_trip::<TrafficSplitConversion>(&old)?;
        // v1alpha2 → hub loses nothing: no annotation.
        prop_assert!(!has_conversion_data(&convert(&old, "split.smi-spec.io/v1alpha4").unwrap()));
    }

    #[test]
    fn access_hub_round_trips(hub in access_hub()) {
        let hub = to_json(&hub);
        for version in access::VERSIONS {
            check_hub_round_trip::<TrafficTargetConversion>(&hub, version)?;
        }
    }

    #[test]
    fn access_v1alpha1_round_trips(old in access_v1alpha1()) {
        check_old_round_trip::<TrafficTargetConversion>(&to_json(&old))?;
    }

    #[test]
    fn access_v1alpha2_round_trips(old in access_v1alpha2()) {
        check_old_round_trip::<TrafficTargetConversion>(&to_json(&old))?;
    }

    #[test]
    fn access_v1alpha1_to_v1alpha2_and_back(old in access_v1alpha1()) {
        // Across two old versions (through the hub): same shape bar the
        // move under `spec`, so exact.
        let old = to_json(&old);
        let mid = convert(&old, "access.smi-spec.io/v1alpha2").unwrap();
        prop_assert_eq!(convert(&mid, "access.smi-spec.io/v1alpha1").unwrap(), old);
    }

    #[test]
    fn http_route_group_hub_round_trips(hub in http_hub()) {
        let hub = to_json(&hub);
        for version in specs::HTTP_ROUTE_GROUP_VERSIONS {
            check_hub_round_trip::<HttpRouteGroupConversion>(&hub, version)?;
        }
        for version in ["v1alpha2", "v1alpha3"] {
            let old = convert(&hub, &api("specs.smi-spec.io", version)).unwrap();
            prop_assert!(!has_conversion_data(&old), "{} needs no annotation", version);
        }
    }

    #[test]
    fn http_route_group_v1alpha1_round_trips(old in http_v1alpha1()) {
        let old = to_json(&old);
        check_old_round_trip::<HttpRouteGroupConversion>(&old)?;
        prop_assert!(!has_conversion_data(&convert(&old, "specs.smi-spec.io/v1alpha4").unwrap()));
    }

    #[test]
    fn http_route_group_old_versions_round_trip(hub in http_hub(), version in 1usize..3) {
        // Any v1alpha2/v1alpha3 object is the down-conversion of some hub.
        let old = convert(&to_json(&hub), &api("specs.smi-spec.io", specs::HTTP_ROUTE_GROUP_VERSIONS[version])).unwrap();
        check_old_round_trip::<HttpRouteGroupConversion>(&old)?;
    }

    #[test]
    fn tcp_route_round_trips(hub in tcp_hub(), meta in metadata()) {
        let hub = to_json(&hub);
        for version in specs::TCP_ROUTE_VERSIONS {
            check_hub_round_trip::<TcpRouteConversion>(&hub, version)?;
        }
        for version in ["v1alpha1", "v1alpha2", "v1alpha3"] {
            let mut old = json!({"apiVersion": api("specs.smi-spec.io", version), "kind": "TCPRoute", "metadata": to_json(&meta)});
            if version == "v1alpha3" {
                old["spec"] = json!({});
            }
            check_old_round_trip::<TcpRouteConversion>(&old)?;
        }
    }
}

// --- examples -----------------------------------------------------------

#[test]
fn v1alpha1_weights_become_milli_units_and_come_back() {
    let old = json!({
        "apiVersion": "split.smi-spec.io/v1alpha1", "kind": "TrafficSplit",
        "metadata": {"name": "s", "namespace": "n"},
        "spec": {"service": "web", "backends": [
            {"service": "a", "weight": "1"}, {"service": "b", "weight": "500m"},
            {"service": "c", "weight": "1.5"}, {"service": "d", "weight": 2}
        ]}
    });
    let hub = convert(&old, "split.smi-spec.io/v1alpha4").unwrap();
    let weights: Vec<u64> = hub["spec"]["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["weight"].as_u64().unwrap())
        .collect();
    assert_eq!(weights, [1000, 500, 1500, 2000]);
    // "1.5" is not the canonical text of 1500m: the original is kept so the
    // trip back is exact.
    assert!(has_conversion_data(&hub));
    let back = convert(&hub, "split.smi-spec.io/v1alpha1").unwrap();
    assert_eq!(back["spec"]["backends"][2]["weight"], "1.5");
    assert_eq!(back["spec"]["backends"][3]["weight"], "2");
    assert!(!has_conversion_data(&back));

    // A plain v1alpha2 object seen as v1alpha1: whole units where divisible.
    let v2 = json!({
        "apiVersion": "split.smi-spec.io/v1alpha2", "kind": "TrafficSplit",
        "metadata": {"name": "s"},
        "spec": {"service": "web", "backends": [{"service": "a", "weight": 90}, {"service": "b", "weight": 3000}]}
    });
    let v1 = convert(&v2, "split.smi-spec.io/v1alpha1").unwrap();
    assert_eq!(v1["spec"]["backends"][0]["weight"], "90m");
    assert_eq!(v1["spec"]["backends"][1]["weight"], "3");
    assert!(!has_conversion_data(&v1));
}

#[test]
fn bad_v1alpha1_weights_are_errors_naming_the_backend() {
    for (weight, want) in [
        ("abc", "not a Kubernetes quantity"),
        ("-1", "negative"),
        ("1u", "finer than 1m"),
    ] {
        let old = json!({
            "apiVersion": "split.smi-spec.io/v1alpha1", "kind": "TrafficSplit",
            "metadata": {"name": "s"},
            "spec": {"service": "web", "backends": [{"service": "a", "weight": "1"}, {"service": "b", "weight": weight}]}
        });
        let err = convert(&old, "split.smi-spec.io/v1alpha4").unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(&err, ConversionError::Invalid { field, .. } if field == "spec.backends[1].weight"),
            "{text}"
        );
        assert!(text.contains(want), "{text}");
    }
}

#[test]
fn matches_survive_a_trip_through_v1alpha2_in_the_annotation() {
    let hub = json!({
        "apiVersion": "split.smi-spec.io/v1alpha4", "kind": "TrafficSplit",
        "metadata": {"name": "ab", "annotations": {"team": "web"}},
        "spec": {"service": "web", "matches": [{"kind": "HTTPRouteGroup", "name": "firefox"}],
                 "backends": [{"service": "v2", "weight": 100}]}
    });
    let v2 = convert(&hub, "split.smi-spec.io/v1alpha2").unwrap();
    assert!(v2["spec"].get("matches").is_none());
    let stored: Value = serde_json::from_str(
        v2["metadata"]["annotations"][CONVERSION_DATA]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(stored["apiVersion"], "split.smi-spec.io/v1alpha4");
    assert_eq!(stored["spec"]["matches"][0]["name"], "firefox");
    assert_eq!(v2["metadata"]["annotations"]["team"], "web");
    assert_eq!(convert(&v2, "split.smi-spec.io/v1alpha4").unwrap(), hub);
}

#[test]
fn an_edit_through_the_hub_drops_stale_old_only_data() {
    let v2 = json!({
        "apiVersion": "access.smi-spec.io/v1alpha2", "kind": "TrafficTarget",
        "metadata": {"name": "t"},
        "spec": {"destination": {"kind": "ServiceAccount", "name": "api", "port": 8080},
                 "sources": [{"kind": "ServiceAccount", "name": "web"}]}
    });
    let mut hub = convert(&v2, "access.smi-spec.io/v1alpha3").unwrap();
    assert!(hub["spec"]["destination"].get("port").is_none());
    assert!(has_conversion_data(&hub));
    assert_eq!(convert(&hub, "access.smi-spec.io/v1alpha2").unwrap(), v2);

    // A v1alpha3 client adds a source: reading as v1alpha2 shows the edit;
    // the port, which no longer describes this object, is gone with the
    // stale annotation.
    hub["spec"]["sources"]
        .as_array_mut()
        .unwrap()
        .push(json!({"kind": "ServiceAccount", "name": "batch"}));
    let edited = convert(&hub, "access.smi-spec.io/v1alpha2").unwrap();
    assert_eq!(edited["spec"]["sources"][1]["name"], "batch");
    assert!(edited["spec"]["destination"].get("port").is_none());
    assert!(!has_conversion_data(&edited));
}

#[test]
fn udp_rules_are_hidden_from_old_versions_and_restored() {
    let hub = json!({
        "apiVersion": "access.smi-spec.io/v1alpha3", "kind": "TrafficTarget",
        "metadata": {"name": "t"},
        "spec": {"destination": {"kind": "ServiceAccount", "name": "server"},
                 "rules": [{"kind": "TCPRoute", "name": "tcp"}, {"kind": "UDPRoute", "name": "udp"}],
                 "sources": [{"kind": "ServiceAccount", "name": "client"}]}
    });
    let v1 = convert(&hub, "access.smi-spec.io/v1alpha1").unwrap();
    assert_eq!(v1["specs"], json!([{"kind": "TCPRoute", "name": "tcp"}]));
    assert_eq!(v1["destination"]["name"], "server");
    assert!(v1.get("spec").is_none());
    assert_eq!(convert(&v1, "access.smi-spec.io/v1alpha3").unwrap(), hub);
}

#[test]
fn headers_in_map_form_are_written_in_list_form() {
    let v3 = json!({
        "apiVersion": "specs.smi-spec.io/v1alpha3", "kind": "HTTPRouteGroup",
        "metadata": {"name": "r"},
        "spec": {"matches": [{"name": "android", "headers": {"user-agent": ".*Android.*", "cookie": "x"}}]}
    });
    let hub = convert(&v3, "specs.smi-spec.io/v1alpha4").unwrap();
    assert_eq!(
        hub["spec"]["matches"][0]["headers"],
        json!([{"cookie": "x"}, {"user-agent": ".*Android.*"}])
    );
    // Both forms mean the same: no annotation for the change of shape.
    assert!(!has_conversion_data(&hub));
    let v1 = convert(&hub, "specs.smi-spec.io/v1alpha1").unwrap();
    assert!(v1["matches"][0].get("headers").is_none());
    assert!(has_conversion_data(&v1));
}

#[test]
fn tcp_route_ports_are_kept_for_old_versions() {
    let hub = json!({
        "apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "TCPRoute",
        "metadata": {"name": "db"},
        "spec": {"matches": {"ports": [3306]}}
    });
    let v1 = convert(&hub, "specs.smi-spec.io/v1alpha1").unwrap();
    assert_eq!(v1.as_object().unwrap().len(), 3, "{v1}"); // apiVersion, kind, metadata
    assert_eq!(convert(&v1, "specs.smi-spec.io/v1alpha4").unwrap(), hub);
    // An old TCPRoute means every port.
    let plain = json!({"apiVersion": "specs.smi-spec.io/v1alpha2", "kind": "TCPRoute", "metadata": {"name": "any"}});
    assert_eq!(
        to_hub_value(&plain).unwrap()["spec"],
        json!({"matches": {"ports": []}})
    );
}

#[test]
fn errors_say_what_is_wrong() {
    let ts = |api: &str| {
        json!({"apiVersion": api, "kind": "TrafficSplit", "metadata": {"name": "s"},
        "spec": {"service": "web", "backends": []}})
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"kind": "TrafficSplit"}),
            "split.smi-spec.io/v1alpha4",
            "apiVersion: missing",
        ),
        (
            json!({"apiVersion": "split.smi-spec.io/v1alpha4"}),
            "split.smi-spec.io/v1alpha2",
            "kind: missing",
        ),
        (
            ts("split.smi-spec.io/v1alpha4"),
            "split.smi-spec.io/v1beta1",
            "version \"v1beta1\" of split.smi-spec.io is not served",
        ),
        (
            ts("split.smi-spec.io/v1alpha9"),
            "split.smi-spec.io/v1alpha4",
            "version \"v1alpha9\"",
        ),
        (
            ts("split.smi-spec.io/v1alpha4"),
            "access.smi-spec.io/v1alpha3",
            "cannot convert from group split.smi-spec.io to group access.smi-spec.io",
        ),
        (
            ts("split.smi-spec.io/v1alpha4"),
            "v1alpha2",
            "not of the form <group>/<version>",
        ),
        (
            json!({"apiVersion": "apps/v1", "kind": "Deployment"}),
            "apps/v1",
            "not a kind Meshlet converts",
        ),
        (
            json!({"apiVersion": "split.smi-spec.io/v1alpha4", "kind": "TrafficSplit", "metadata": {"name": "s"}, "spec": {"backends": []}}),
            "split.smi-spec.io/v1alpha2",
            "split.smi-spec.io/v1alpha4 TrafficSplit: spec: missing field `service`",
        ),
        (
            json!({"apiVersion": "split.smi-spec.io/v1alpha2", "kind": "TrafficSplit", "metadata": {"name": "s"},
                   "spec": {"service": "w", "backends": [{"service": "a", "weight": -3}]}}),
            "split.smi-spec.io/v1alpha4",
            "spec.backends[0].weight",
        ),
    ];
    for (obj, to, want) in cases {
        let err = convert(&obj, to).unwrap_err().to_string();
        assert!(err.contains(want), "{obj} → {to}: {err}");
    }
}

#[test]
fn unusable_conversion_data_is_ignored() {
    for stored in [
        "not json",
        r#"{"apiVersion": "split.smi-spec.io/v1alpha1", "spec": {"service": "web", "backends": [{"service": "a", "weight": "1u"}]}}"#,
        r#"{"apiVersion": "split.smi-spec.io/v1alpha1", "spec": 3}"#,
    ] {
        let hub = json!({"apiVersion": "split.smi-spec.io/v1alpha4", "kind": "TrafficSplit",
            "metadata": {"name": "s", "annotations": {CONVERSION_DATA: stored}},
            "spec": {"service": "web", "backends": [{"service": "a", "weight": 1000}]}});
        let v1 = convert(&hub, "split.smi-spec.io/v1alpha1").unwrap();
        assert_eq!(v1["spec"]["backends"][0]["weight"], "1", "{stored}");
        assert!(!has_conversion_data(&v1), "{stored}");
    }
}

#[test]
fn an_object_already_in_the_desired_version_is_untouched() {
    let obj = json!({"apiVersion": "split.smi-spec.io/v1alpha1", "kind": "TrafficSplit", "metadata": {"name": "s"},
        "spec": {"service": "web", "backends": [{"service": "a", "weight": "0.5"}], "extra": true}});
    assert_eq!(convert(&obj, "split.smi-spec.io/v1alpha1").unwrap(), obj);
}

#[test]
fn dynamic_objects_convert() {
    let obj: kube::core::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "split.smi-spec.io/v1alpha2", "kind": "TrafficSplit", "metadata": {"name": "s"},
        "spec": {"service": "web", "backends": [{"service": "a", "weight": 3}]}
    }))
    .unwrap();
    let out =
        meshlet_crds::conversion::convert_dynamic(&obj, "split.smi-spec.io/v1alpha1").unwrap();
    assert_eq!(out.types.unwrap().api_version, "split.smi-spec.io/v1alpha1");
    assert_eq!(out.data["spec"]["backends"][0]["weight"], "3m");
    assert_eq!(out.metadata.name.as_deref(), Some("s"));
}

#[test]
fn objects_without_metadata_convert() {
    let obj = json!({"apiVersion": "specs.smi-spec.io/v1alpha1", "kind": "TCPRoute"});
    let hub = convert(&obj, "specs.smi-spec.io/v1alpha4").unwrap();
    assert_eq!(hub["spec"]["matches"]["ports"], json!([]));
}

#[test]
fn udp_route_converts_to_itself() {
    let obj = json!({"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "UDPRoute", "metadata": {"name": "u"},
        "spec": {"matches": {"name": "dns", "ports": [53]}}});
    assert_eq!(convert(&obj, "specs.smi-spec.io/v1alpha4").unwrap(), obj);
    assert!(convert(&obj, "specs.smi-spec.io/v1alpha3").is_err());
}

#[test]
fn metadata_other_than_the_annotation_is_untouched() {
    let mut annotations = BTreeMap::new();
    annotations.insert("a.io/x".to_string(), "1".to_string());
    let obj = json!({"apiVersion": "specs.smi-spec.io/v1alpha1", "kind": "HTTPRouteGroup",
        "metadata": {"name": "r", "namespace": "n", "uid": "1234", "resourceVersion": "7",
                     "labels": {"app": "web"}, "annotations": annotations},
        "matches": [{"name": "all", "pathRegex": ".*", "methods": ["*"]}]});
    let hub = convert(&obj, "specs.smi-spec.io/v1alpha4").unwrap();
    assert_eq!(hub["metadata"], obj["metadata"]);
    assert_eq!(hub["spec"]["matches"], obj["matches"]);
}

#[test]
fn reviews_convert_every_object_or_fail_naming_the_object() {
    use kube::core::conversion::ConversionReview;
    let request: ConversionReview = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
        "request": {"uid": "u-1", "desiredAPIVersion": "split.smi-spec.io/v1alpha4", "objects": [
            {"apiVersion": "split.smi-spec.io/v1alpha1", "kind": "TrafficSplit", "metadata": {"name": "a", "namespace": "n"},
             "spec": {"service": "web", "backends": [{"service": "x", "weight": "250m"}]}},
            {"apiVersion": "split.smi-spec.io/v1alpha2", "kind": "TrafficSplit", "metadata": {"name": "b", "namespace": "n"},
             "spec": {"service": "web", "backends": [{"service": "y", "weight": 7}]}}
        ]}
    }))
    .unwrap();
    let response = serde_json::to_value(meshlet_crds::conversion::review(request.clone())).unwrap();
    assert_eq!(response["apiVersion"], "apiextensions.k8s.io/v1");
    assert_eq!(response["kind"], "ConversionReview");
    assert_eq!(response["response"]["uid"], "u-1");
    assert_eq!(response["response"]["result"]["status"], "Success");
    let objects = response["response"]["convertedObjects"].as_array().unwrap();
    assert_eq!(objects[0]["spec"]["backends"][0]["weight"], 250);
    assert_eq!(objects[1]["apiVersion"], "split.smi-spec.io/v1alpha4");

    let mut bad = request;
    bad.request.as_mut().unwrap().objects[1]["spec"]["backends"][0]["weight"] = json!("heavy");
    let response = serde_json::to_value(meshlet_crds::conversion::review(bad)).unwrap();
    assert_eq!(response["response"]["uid"], "u-1");
    assert_eq!(response["response"]["result"]["status"], "Failure");
    let message = response["response"]["result"]["message"].as_str().unwrap();
    assert!(
        message.contains("converting n/b to split.smi-spec.io/v1alpha4"),
        "{message}"
    );
    assert!(message.contains("spec.backends[0].weight"), "{message}");

    let no_request: ConversionReview = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview"
    }))
    .unwrap();
    let response = serde_json::to_value(meshlet_crds::conversion::review(no_request)).unwrap();
    assert_eq!(response["response"]["result"]["status"], "Failure");
}

/// Converts `obj` to `api_version` and drops the conversion-data annotation.
fn plain_view(obj: &Value, api_version: &str) -> Value {
    let mut out = convert(obj, api_version).unwrap();
    if let Some(a) = out
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        a.remove(CONVERSION_DATA);
        if a.is_empty() {
            out["metadata"]
                .as_object_mut()
                .unwrap()
                .remove("annotations");
        }
    }
    out
}

#[test]
fn an_edit_through_an_old_version_keeps_what_only_the_hub_says() {
    // TrafficSplit: a v1alpha2 client shifts weights; the matches stay.
    let hub = json!({"apiVersion": "split.smi-spec.io/v1alpha4", "kind": "TrafficSplit", "metadata": {"name": "ab"},
        "spec": {"service": "web", "matches": [{"kind": "HTTPRouteGroup", "name": "firefox"}],
                 "backends": [{"service": "v1", "weight": 90}, {"service": "v2", "weight": 10}]}});
    let mut v2 = convert(&hub, "split.smi-spec.io/v1alpha2").unwrap();
    v2["spec"]["backends"][0]["weight"] = json!(50);
    v2["spec"]["backends"][1]["weight"] = json!(50);
    let edited = convert(&v2, "split.smi-spec.io/v1alpha4").unwrap();
    assert_eq!(edited["spec"]["matches"], hub["spec"]["matches"]);
    assert_eq!(edited["spec"]["backends"][0]["weight"], 50);
    assert!(
        !has_conversion_data(&edited),
        "the hub now holds everything itself"
    );
    assert_eq!(
        plain_view(&edited, "split.smi-spec.io/v1alpha2")["spec"],
        v2["spec"]
    );

    // A v1alpha3 client can say "no matches", and is believed.
    let mut v3 = convert(&hub, "split.smi-spec.io/v1alpha3").unwrap();
    v3["spec"].as_object_mut().unwrap().remove("matches");
    assert!(convert(&v3, "split.smi-spec.io/v1alpha4").unwrap()["spec"]
        .get("matches")
        .is_none());

    // TrafficTarget: a v1alpha1 client adds a source; the UDPRoute rule stays.
    let tt = json!({"apiVersion": "access.smi-spec.io/v1alpha3", "kind": "TrafficTarget", "metadata": {"name": "t"},
        "spec": {"destination": {"kind": "ServiceAccount", "name": "server"},
                 "rules": [{"kind": "TCPRoute", "name": "tcp"}, {"kind": "UDPRoute", "name": "udp"}],
                 "sources": [{"kind": "ServiceAccount", "name": "client"}]}});
    let mut v1 = convert(&tt, "access.smi-spec.io/v1alpha1").unwrap();
    v1["sources"]
        .as_array_mut()
        .unwrap()
        .push(json!({"kind": "ServiceAccount", "name": "batch"}));
    let edited = convert(&v1, "access.smi-spec.io/v1alpha3").unwrap();
    assert_eq!(edited["spec"]["rules"], tt["spec"]["rules"]);
    assert_eq!(edited["spec"]["sources"][1]["name"], "batch");

    // HTTPRouteGroup: a v1alpha1 client changes a path; headers stay, per match name.
    let hrg = json!({"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "HTTPRouteGroup", "metadata": {"name": "r"},
        "spec": {"matches": [{"name": "ff", "pathRegex": "/a", "headers": [{"user-agent": ".*Firefox.*"}]},
                             {"name": "all", "pathRegex": ".*"}]}});
    let mut v1 = convert(&hrg, "specs.smi-spec.io/v1alpha1").unwrap();
    v1["matches"][0]["pathRegex"] = json!("/b");
    let edited = convert(&v1, "specs.smi-spec.io/v1alpha4").unwrap();
    assert_eq!(edited["spec"]["matches"][0]["pathRegex"], "/b");
    assert_eq!(
        edited["spec"]["matches"][0]["headers"],
        hrg["spec"]["matches"][0]["headers"]
    );
    assert!(edited["spec"]["matches"][1].get("headers").is_none());

    // TCPRoute: a v1alpha2 client adds a label; the ports stay.
    let tcp = json!({"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "TCPRoute", "metadata": {"name": "db"},
        "spec": {"matches": {"name": "pg", "ports": [5432]}}});
    let mut v2 = convert(&tcp, "specs.smi-spec.io/v1alpha2").unwrap();
    v2["metadata"]["labels"] = json!({"team": "data"});
    let edited = convert(&v2, "specs.smi-spec.io/v1alpha4").unwrap();
    assert_eq!(edited["spec"], tcp["spec"]);
    assert_eq!(edited["metadata"]["labels"]["team"], "data");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any edit of a split through v1alpha1/v1alpha2 is kept whole, and the
    /// hub's matches survive it.
    #[test]
    fn split_edits_through_old_versions_keep_matches(
        hub in split_hub(),
        edit in split_v1alpha2(),
        old_version in prop_oneof![Just("v1alpha1"), Just("v1alpha2")],
    ) {
        let hub = to_json(&hub);
        let target = api("split.smi-spec.io", old_version);
        let mut old = convert(&hub, &target).unwrap();
        // Replace the spec with another one written in v1alpha2 terms.
        let new_spec = plain_view(&to_json(&edit), &target)["spec"].clone();
        old["spec"] = new_spec.clone();
        let edited = convert(&old, "split.smi-spec.io/v1alpha4").unwrap();
        prop_assert_eq!(&edited["spec"].get("matches"), &hub["spec"].get("matches"));
        prop_assert_eq!(&plain_view(&edited, &target)["spec"], &new_spec);
    }
}

/// Meshlet's `status` (conditions) has one shape in every version: it
/// survives conversion down and back, and adds no conversion-data annotation.
#[test]
fn status_survives_every_version() {
    let status = json!({"conditions": [{
        "type": "Accepted", "status": "False", "reason": "AllWeightsZero",
        "message": "every backend has weight 0", "lastTransitionTime": "2026-01-01T00:00:00Z",
        "observedGeneration": 3,
    }]});
    let split = json!({
        "apiVersion": "split.smi-spec.io/v1alpha4", "kind": "TrafficSplit",
        "metadata": {"name": "s", "namespace": "n"},
        "spec": {"service": "web", "backends": [{"service": "web-v1", "weight": 0}]},
        "status": status,
    });
    for version in ["v1alpha1", "v1alpha2", "v1alpha3"] {
        let old = convert(&split, &format!("split.smi-spec.io/{version}")).unwrap();
        assert_eq!(old["status"], status, "{version}: {old}");
        assert!(!has_conversion_data(&old), "{version}: {old}");
        let back = convert(&old, "split.smi-spec.io/v1alpha4").unwrap();
        assert_eq!(back["status"], status, "{version} back: {back}");
    }
    let target = json!({
        "apiVersion": "access.smi-spec.io/v1alpha3", "kind": "TrafficTarget",
        "metadata": {"name": "t", "namespace": "n"},
        "spec": {"destination": {"kind": "ServiceAccount", "name": "web"},
                 "sources": [{"kind": "ServiceAccount", "name": "client"}],
                 "rules": [{"kind": "HTTPRouteGroup", "name": "routes"}]},
        "status": status,
    });
    for version in ["v1alpha1", "v1alpha2"] {
        let old = convert(&target, &format!("access.smi-spec.io/{version}")).unwrap();
        assert_eq!(old["status"], status, "{version}: {old}");
        assert!(!has_conversion_data(&old), "{version}: {old}");
        let back = convert(&old, "access.smi-spec.io/v1alpha3").unwrap();
        assert_eq!(back["status"], status, "{version} back: {back}");
    }
}
