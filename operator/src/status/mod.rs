//! Writes `status.conditions` on TrafficSplits and TrafficTargets (see
//! [`conditions`]) after every recompute, only on the leader, only when
//! they changed, with server-side apply on the status subresource (field
//! manager `meshlet-operator`); never touches `spec`. Events stay too.

pub mod conditions;

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use meshlet_crds::split::status::SmiStatus;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::config::Finding;
use crate::context::Context;

/// Field manager of the status writes.
pub const FIELD_MANAGER: &str = "meshlet-operator";

/// How long to wait before retrying failed writes.
const RETRY: Duration = Duration::from_secs(5);

/// Runs until the operator stops.
pub async fn run(ctx: Arc<Context>) {
    let mut recomputed = ctx.recomputed.subscribe();
    let mut leader = ctx.leader.clone();
    let mut leader_open = true;
    let mut failed = false;
    loop {
        if *leader.borrow_and_update() {
            recomputed.borrow_and_update();
            failed = !pass(&ctx).await;
        }
        tokio::select! {
            changed = recomputed.changed() => if changed.is_err() { return },
            changed = leader.changed(), if leader_open => leader_open = changed.is_ok(),
            _ = tokio::time::sleep(RETRY), if failed => {}
        }
    }
}

/// One pass over every object; false when a write failed.
async fn pass(ctx: &Context) -> bool {
    let findings = ctx.findings.borrow().clone();
    let mut about: HashMap<(&str, &str, &str), Vec<&Finding>> = HashMap::new();
    for f in &findings {
        about
            .entry((&f.object.kind, &f.object.namespace, &f.object.name))
            .or_default()
            .push(f);
    }
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let mut ok = true;
    for ts in ctx.stores.traffic_splits.state() {
        ok &= update(ctx, &*ts, ts.status.as_ref(), &about, &now).await;
    }
    for tt in ctx.stores.traffic_targets.state() {
        ok &= update(ctx, &*tt, tt.status.as_ref(), &about, &now).await;
    }
    ok
}

async fn update<K>(
    ctx: &Context,
    obj: &K,
    current: Option<&SmiStatus>,
    about: &HashMap<(&str, &str, &str), Vec<&Finding>>,
    now: &Time,
) -> bool
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
{
    let (namespace, name) = (obj.namespace().unwrap_or_default(), obj.name_any());
    let kind = K::kind(&());
    let findings = about
        .get(&(kind.as_ref(), namespace.as_str(), name.as_str()))
        .map(Vec::as_slice)
        .unwrap_or_default();
    let desired = conditions::desired(findings, obj.meta().generation, current, now);
    if conditions::same(current, &desired) {
        return true;
    }
    let patch = json!({
        "apiVersion": K::api_version(&()),
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "status": desired,
    });
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
    match api
        .patch_status(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(patch),
        )
        .await
    {
        Ok(_) => {
            tracing::debug!(%kind, %namespace, %name, "status updated");
            true
        }
        // Deleted meanwhile: nothing to write.
        Err(kube::Error::Api(e)) if e.code == 404 => true,
        Err(error) => {
            tracing::warn!(%kind, %namespace, %name, %error, "writing the status failed; retrying");
            false
        }
    }
}
