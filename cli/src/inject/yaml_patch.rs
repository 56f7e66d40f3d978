//! Applies the webhook's JSONPatch (`add` operations only, by design of the
//! injector) to a YAML value, keeping the user's key order and comments'
//! neighbours in place: a `serde_json` round trip would sort every key.

use json_patch::{Patch, PatchOperation};
use serde_yaml::{Mapping, Value};

/// Why a patch did not apply.
#[derive(Debug, thiserror::Error)]
#[error("applying the injection patch at {path}: {reason}")]
pub struct PatchError {
    path: String,
    reason: String,
}

/// Applies every `add` of `patch` to `doc`. A missing map on the way to a
/// map key is created (a pod template without `labels`, say); a missing
/// list is an error.
pub fn apply(doc: &mut Value, patch: &Patch) -> Result<(), PatchError> {
    for op in &patch.0 {
        let PatchOperation::Add(add) = op else {
            return Err(PatchError {
                path: op.path().to_string(),
                reason: "only add operations are expected from the injector".into(),
            });
        };
        let tokens: Vec<String> = add
            .path
            .tokens()
            .map(|t| t.decoded().into_owned())
            .collect();
        let value = serde_yaml::to_value(&add.value).map_err(|e| PatchError {
            path: add.path.to_string(),
            reason: e.to_string(),
        })?;
        add_at(doc, &tokens, name_first(value)).map_err(|reason| PatchError {
            path: add.path.to_string(),
            reason,
        })?;
    }
    Ok(())
}

/// Moves `name` to the front of every map in `value`: the added values come
/// from Kubernetes types serialized with sorted keys, and a container reads
/// better as `- name: meshlet-proxy` than with `args` first.
fn name_first(value: Value) -> Value {
    match value {
        Value::Mapping(map) => {
            let name_key = Value::String("name".into());
            let mut out = Mapping::new();
            if let Some(name) = map.get(&name_key) {
                out.insert(name_key.clone(), name.clone());
            }
            for (k, v) in map {
                if k != name_key {
                    out.insert(k, name_first(v));
                }
            }
            out.into()
        }
        Value::Sequence(list) => Value::Sequence(list.into_iter().map(name_first).collect()),
        other => other,
    }
}

fn add_at(doc: &mut Value, tokens: &[String], value: Value) -> Result<(), String> {
    let Some((last, parents)) = tokens.split_last() else {
        *doc = value;
        return Ok(());
    };
    let mut node = doc;
    for token in parents {
        node = match node {
            Value::Mapping(map) => map
                .entry(Value::String(token.clone()))
                .or_insert_with(|| Value::Mapping(Mapping::new())),
            Value::Sequence(list) => {
                let index: usize = token
                    .parse()
                    .map_err(|_| format!("{token:?} is not a list index"))?;
                list.get_mut(index)
                    .ok_or_else(|| format!("index {index} is past the end of the list"))?
            }
            Value::Null => {
                *node = Value::Mapping(Mapping::new());
                match node {
                    Value::Mapping(map) => map
                        .entry(Value::String(token.clone()))
                        .or_insert_with(|| Value::Mapping(Mapping::new())),
                    _ => unreachable!("just made a mapping"),
                }
            }
            _ => {
                return Err(format!(
                    "{token:?} is under a value that is neither map nor list"
                ))
            }
        };
    }
    match node {
        Value::Mapping(map) => {
            map.insert(Value::String(last.clone()), value);
        }
        Value::Null => {
            let mut map = Mapping::new();
            map.insert(Value::String(last.clone()), value);
            *node = Value::Mapping(map);
        }
        Value::Sequence(list) if last == "-" => list.push(value),
        Value::Sequence(list) => {
            let index: usize = last
                .parse()
                .map_err(|_| format!("{last:?} is not a list index"))?;
            if index > list.len() {
                return Err(format!("index {index} is past the end of the list"));
            }
            list.insert(index, value);
        }
        _ => {
            return Err(format!(
                "{last:?} is under a value that is neither map nor list"
            ))
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch(ops: serde_json::Value) -> Patch {
        serde_json::from_value(ops).unwrap()
    }

    #[test]
    fn same_result_as_json_patch_and_keeps_key_order() {
        let input = "spec:\n  zeta: 1\n  containers: [{name: app}]\n  alpha: 2\nmetadata:\n  labels: {b: x}\n";
        let ops = patch(json!([
            {"op": "add", "path": "/metadata/labels/a~1b", "value": "y"},
            {"op": "add", "path": "/metadata/annotations", "value": {"k": "v"}},
            {"op": "add", "path": "/spec/containers/0", "value": {"name": "proxy"}},
            {"op": "add", "path": "/spec/volumes", "value": []},
            {"op": "add", "path": "/spec/volumes/-", "value": {"name": "v"}},
        ]));
        let mut yaml: Value = serde_yaml::from_str(input).unwrap();
        apply(&mut yaml, &ops).unwrap();
        let mut json: serde_json::Value = serde_yaml::from_str(input).unwrap();
        json_patch::patch(&mut json, &ops).unwrap();
        assert_eq!(serde_json::to_value(&yaml).unwrap(), json);
        let keys: Vec<_> = yaml["spec"]
            .as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap().to_string())
            .collect();
        assert_eq!(keys, ["zeta", "containers", "alpha", "volumes"]);
    }

    #[test]
    fn missing_parent_map_is_created_but_bad_index_is_an_error() {
        let mut yaml: Value = serde_yaml::from_str("spec: {containers: []}").unwrap();
        let ops = patch(json!([{"op": "add", "path": "/metadata/labels/x", "value": "1"}]));
        apply(&mut yaml, &ops).unwrap();
        assert_eq!(yaml["metadata"]["labels"]["x"], Value::from("1"));
        let bad = patch(json!([{"op": "add", "path": "/spec/containers/3", "value": {}}]));
        let err = apply(&mut yaml, &bad).unwrap_err().to_string();
        assert!(err.contains("/spec/containers/3"), "{err}");
    }
}
