//! The per-namespace default access policy: the `meshlet.dev/default-policy`
//! namespace annotation (`deny` or `permissive`) overrides the install-wide
//! default for the meshed pods of that namespace.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use meshlet_crds::contract::annotations::{
    DEFAULT_POLICY, DEFAULT_POLICY_DENY, DEFAULT_POLICY_PERMISSIVE,
};

use super::findings::reason;
use super::{Finding, ObjectKey};

/// Namespaces whose annotation sets their default policy, mapped to
/// whether it is permissive. An invalid value is reported and ignored, so
/// the install default applies there.
pub fn namespace_overrides<'a>(
    namespaces: impl IntoIterator<Item = &'a Namespace>,
    findings: &mut Vec<Finding>,
) -> HashMap<String, bool> {
    let mut out = HashMap::new();
    for ns in namespaces {
        let Some(value) = ns.annotations().get(DEFAULT_POLICY) else {
            continue;
        };
        match value.trim() {
            DEFAULT_POLICY_DENY => {
                out.insert(ns.name_any(), false);
            }
            DEFAULT_POLICY_PERMISSIVE => {
                out.insert(ns.name_any(), true);
            }
            other => findings.push(Finding {
                object: ObjectKey {
                    api_version: "v1".into(),
                    kind: "Namespace".into(),
                    // Events about a namespace are kept in it, where
                    // `kubectl get events -n <ns>` shows them.
                    namespace: ns.name_any(),
                    name: ns.name_any(),
                    uid: ns.uid(),
                },
                reason: reason::INVALID_DEFAULT_POLICY,
                message: format!(
                    "annotation {DEFAULT_POLICY}: {other:?} is not {DEFAULT_POLICY_DENY:?} or {DEFAULT_POLICY_PERMISSIVE:?}; the install default applies"
                ),
            }),
        }
    }
    out
}
