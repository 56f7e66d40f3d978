//! Running one scenario in a namespace of its own: print what the cluster
//! saw when it fails, delete the namespace when it passes (a failed
//! scenario's namespace is kept for inspection and named in the panic).

use crate::namespace::TestNamespace;
use crate::{cluster, diagnose};
use kube::Client;
use std::future::Future;
use std::time::Instant;

/// Create a namespace `<prefix>-<suffix>` (labelled for injection when
/// `meshed`), run `body` in it, report its duration, and clean up.
pub async fn run<F, Fut>(prefix: &str, meshed: bool, body: F)
where
    F: FnOnce(Client, String) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let client = cluster::client().await.expect("cluster");
    let ns = if meshed {
        TestNamespace::create_meshed(&client, prefix).await
    } else {
        TestNamespace::create(&client, prefix).await
    }
    .expect("namespace");
    println!("[{prefix}] namespace {}", ns.name);
    let t0 = Instant::now();
    let result = body(client.clone(), ns.name.clone()).await;
    match result {
        Ok(()) => {
            println!("[{prefix}] passed in {:.1?}", t0.elapsed());
            ns.delete().await.expect("deleting the namespace");
        }
        Err(e) => {
            diagnose::dump_namespace(&client, &ns.name).await;
            panic!(
                "[{prefix}] failed after {:.1?}: {e:#}\n(namespace {} kept for inspection: kubectl delete ns {})",
                t0.elapsed(),
                ns.name,
                ns.name
            );
        }
    }
}
