//! What the cluster saw in a namespace, printed when a test fails.

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{ListParams, LogParams};
use kube::{Api, Client};

/// Print every pod's phase, conditions and container states, the last log
/// lines of each container, and the namespace's events, oldest first.
/// Best effort: errors are printed, never returned.
pub async fn dump_namespace(client: &Client, ns: &str) {
    eprintln!("---- diagnostics for namespace {ns} ----");
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    match pods.list(&ListParams::default()).await {
        Ok(list) => {
            for pod in list {
                let name = pod.metadata.name.clone().unwrap_or_default();
                let status = pod.status.clone().unwrap_or_default();
                eprintln!(
                    "pod {name}: phase={:?} ip={:?} node={:?}",
                    status.phase,
                    status.pod_ip,
                    pod.spec.as_ref().and_then(|s| s.node_name.clone())
                );
                for c in status.conditions.unwrap_or_default() {
                    eprintln!(
                        "  condition {}={} {}",
                        c.type_,
                        c.status,
                        c.message.unwrap_or_default()
                    );
                }
                // Init containers first: the redirect step and, as a native
                // sidecar, the Meshlet proxy live there.
                let statuses = status
                    .init_container_statuses
                    .unwrap_or_default()
                    .into_iter()
                    .chain(status.container_statuses.unwrap_or_default());
                for cs in statuses {
                    eprintln!(
                        "  container {}: ready={} restarts={} state={:?}",
                        cs.name, cs.ready, cs.restart_count, cs.state
                    );
                    let params = LogParams {
                        container: Some(cs.name.clone()),
                        tail_lines: Some(20),
                        ..Default::default()
                    };
                    match pods.logs(&name, &params).await {
                        Ok(logs) => eprintln!("  logs:\n{}", indent(&logs)),
                        Err(e) => eprintln!("  logs unavailable: {e}"),
                    }
                }
            }
        }
        Err(e) => eprintln!("listing pods failed: {e}"),
    }
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    match events.list(&ListParams::default()).await {
        Ok(list) => {
            let mut items = list.items;
            items.sort_by_key(|e| e.last_timestamp.clone().map(|t| t.0));
            for e in items {
                eprintln!(
                    "event {} {}/{}: {} {}",
                    e.type_.unwrap_or_default(),
                    e.involved_object.kind.unwrap_or_default(),
                    e.involved_object.name.unwrap_or_default(),
                    e.reason.unwrap_or_default(),
                    e.message.unwrap_or_default()
                );
            }
        }
        Err(e) => eprintln!("listing events failed: {e}"),
    }
    eprintln!("---- end of diagnostics ----");
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}
