//! The `headers` field of an HTTPRouteGroup match, which SMI writes in two
//! shapes.
//!
//! The upstream CRD schema declares an array of single-key maps
//! (`headers: [{user-agent: ".*Android.*"}]`), while the SMI specification
//! text shows a map (`headers: {user-agent: ".*Android.*"}`). Meshlet reads
//! both and always writes the CRD (array) form, one header per item, sorted
//! by name. The CRD schema marks the field
//! `x-kubernetes-preserve-unknown-fields` so the API server stores either
//! shape as written (see `crds/README.md`); the Rust reader is where the
//! shape is checked.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Header match conditions: header name → regular expression for its value.
/// All must match (AND).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpHeaders(pub BTreeMap<String, String>);

impl HttpHeaders {
    /// True when there is no header condition.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<const N: usize> From<[(&str, &str); N]> for HttpHeaders {
    fn from(pairs: [(&str, &str); N]) -> Self {
        HttpHeaders(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }
}

impl Serialize for HttpHeaders {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            seq.serialize_element(&BTreeMap::from([(name, value)]))?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for HttpHeaders {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(HeadersVisitor)
    }
}

struct HeadersVisitor;

fn insert<E: de::Error>(
    out: &mut BTreeMap<String, String>,
    name: String,
    value: String,
) -> Result<(), E> {
    if out.contains_key(&name) {
        return Err(E::custom(format!(
            "headers: header {name:?} is listed more than once"
        )));
    }
    out.insert(name, value);
    Ok(())
}

impl<'de> Visitor<'de> for HeadersVisitor {
    type Value = HttpHeaders;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("headers as a list of {name: regex} maps or as one {name: regex} map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<HttpHeaders, A::Error> {
        let mut out = BTreeMap::new();
        while let Some((name, value)) = map.next_entry::<String, String>()? {
            insert(&mut out, name, value)?;
        }
        Ok(HttpHeaders(out))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<HttpHeaders, A::Error> {
        let mut out = BTreeMap::new();
        while let Some(item) = seq.next_element::<BTreeMap<String, String>>()? {
            for (name, value) in item {
                insert(&mut out, name, value)?;
            }
        }
        Ok(HttpHeaders(out))
    }

    fn visit_unit<E: de::Error>(self) -> Result<HttpHeaders, E> {
        Ok(HttpHeaders::default())
    }

    fn visit_none<E: de::Error>(self) -> Result<HttpHeaders, E> {
        Ok(HttpHeaders::default())
    }
}

impl JsonSchema for HttpHeaders {
    fn schema_name() -> Cow<'static, str> {
        "HttpHeaders".into()
    }

    fn inline_schema() -> bool {
        true
    }

    // Either shape is admitted (see the module docs); a structural schema
    // cannot say "array or map", so the node keeps what it is given.
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Header match conditions of this route: header name to a regular expression for its value, all of which must match. Written as a list of single-key maps (the upstream CRD form); a single map (the SMI specification text form) is also accepted.",
            "x-kubernetes-preserve-unknown-fields": true
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn reads_the_crd_array_form() {
        let h: HttpHeaders = serde_json::from_value(json!([
            {"user-agent": ".*Android.*"},
            {"cookie": "^(.*?;)?(type=insider)(;.*)?$"}
        ]))
        .unwrap();
        assert_eq!(
            h,
            HttpHeaders::from([
                ("cookie", "^(.*?;)?(type=insider)(;.*)?$"),
                ("user-agent", ".*Android.*")
            ])
        );
    }

    #[test]
    fn reads_the_spec_text_map_form() {
        let h: HttpHeaders = serde_json::from_value(json!({
            "user-agent": ".*Android.*",
            "cookie": "x"
        }))
        .unwrap();
        assert_eq!(
            h,
            HttpHeaders::from([("cookie", "x"), ("user-agent", ".*Android.*")])
        );
    }

    #[test]
    fn reads_multi_key_array_items() {
        let h: HttpHeaders = serde_json::from_value(json!([{"a": "1", "b": "2"}])).unwrap();
        assert_eq!(h, HttpHeaders::from([("a", "1"), ("b", "2")]));
    }

    #[test]
    fn writes_the_crd_array_form_sorted() {
        let h = HttpHeaders::from([("user-agent", "u"), ("cookie", "c")]);
        assert_eq!(
            serde_json::to_value(&h).unwrap(),
            json!([{"cookie": "c"}, {"user-agent": "u"}])
        );
    }

    #[test]
    fn rejects_a_header_given_twice() {
        let err = serde_json::from_value::<HttpHeaders>(json!([{"a": "1"}, {"a": "2"}]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"a\" is listed more than once"), "{err}");
    }

    #[test]
    fn rejects_other_shapes() {
        assert!(serde_json::from_value::<HttpHeaders>(json!("x")).is_err());
        assert!(serde_json::from_value::<HttpHeaders>(json!([1])).is_err());
        assert!(serde_json::from_value::<HttpHeaders>(json!({"a": 1})).is_err());
    }

    #[test]
    fn reads_yaml_of_both_forms() {
        let a: HttpHeaders = serde_yaml::from_str("- user-agent: '.*Firefox.*'\n").unwrap();
        let b: HttpHeaders = serde_yaml::from_str("user-agent: '.*Firefox.*'\n").unwrap();
        assert_eq!(a, b);
    }

    proptest! {
        #[test]
        fn array_and_map_forms_round_trip(
            headers in proptest::collection::btree_map("[a-z-]{1,12}", ".{0,12}", 0..5)
        ) {
            let h = HttpHeaders(headers.clone());
            let written = serde_json::to_value(&h).unwrap();
            prop_assert_eq!(&serde_json::from_value::<HttpHeaders>(written).unwrap(), &h);
            let as_map = serde_json::to_value(&headers).unwrap();
            prop_assert_eq!(serde_json::from_value::<HttpHeaders>(as_map).unwrap(), h);
        }
    }
}
