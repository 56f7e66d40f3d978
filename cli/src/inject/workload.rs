//! Where each workload kind keeps its pod template, and which Deployment
//! (if any) its pods will belong to.

use serde_yaml::Value;

/// Kinds `meshlet inject` injects, with the path from the object to its pod
/// template (`[]` for a Pod: the object is its own template).
pub fn template_path(api_version: &str, kind: &str) -> Option<&'static [&'static str]> {
    let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
    match (group, kind) {
        ("", "Pod") => Some(&[]),
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet") => {
            Some(&["spec", "template"])
        }
        ("", "ReplicationController") => Some(&["spec", "template"]),
        ("batch", "Job") => Some(&["spec", "template"]),
        ("batch", "CronJob") => Some(&["spec", "jobTemplate", "spec", "template"]),
        _ => None,
    }
}

/// Whether the object is a list of objects (`kind: List`, or any `…List`
/// with `items`, as `kubectl get -o yaml` prints).
pub fn is_list(object: &Value) -> bool {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    kind.ends_with("List") && object.get("items").is_some_and(Value::is_sequence)
}

/// The value at `path` under `object`, if every step is a map key.
pub fn get_mut<'a>(object: &'a mut Value, path: &[&str]) -> Option<&'a mut Value> {
    path.iter().try_fold(object, |node, key| node.get_mut(*key))
}

/// A string field of the object's metadata.
pub fn metadata_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object.get("metadata")?.get(field)?.as_str()
}
