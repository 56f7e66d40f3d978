//! Finds the etcd, kube-apiserver and kube-controller-manager binaries built by `make k8s-bins`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

/// The Kubernetes release the binaries are built at (`e2e/k8s/kubernetes/go.mod`).
pub const K8S_VERSION: &str = "v1.34.4";

/// Overrides the directory holding the binaries.
pub const BIN_DIR_ENV: &str = "MESHLET_K8S_BIN";

/// The cache root `make k8s-bins` writes to (as in the Makefile).
pub const CACHE_ENV: &str = "MESHLET_CACHE";

/// Paths of the control-plane binaries.
#[derive(Clone, Debug)]
pub struct Binaries {
    pub dir: PathBuf,
    pub etcd: PathBuf,
    pub kube_apiserver: PathBuf,
    pub kube_controller_manager: PathBuf,
}

impl Binaries {
    /// `$MESHLET_K8S_BIN`, else `$MESHLET_CACHE/k8s/<version>/bin`, else the
    /// workspace's `.cache/k8s/<version>/bin`. Missing binaries are an error
    /// (tests must not silently skip).
    pub fn locate() -> Result<Binaries> {
        let dir = match (std::env::var_os(BIN_DIR_ENV), std::env::var_os(CACHE_ENV)) {
            (Some(dir), _) => PathBuf::from(dir),
            (None, Some(cache)) => cache_bin_dir(Path::new(&cache)),
            (None, None) => cache_bin_dir(&workspace_root().join(".cache")),
        };
        Binaries::in_dir(&dir)
    }

    /// The binaries in `dir`, all of which must exist.
    pub fn in_dir(dir: &Path) -> Result<Binaries> {
        let binaries = Binaries {
            dir: dir.to_path_buf(),
            etcd: dir.join("etcd"),
            kube_apiserver: dir.join("kube-apiserver"),
            kube_controller_manager: dir.join("kube-controller-manager"),
        };
        let missing: Vec<String> = [
            &binaries.etcd,
            &binaries.kube_apiserver,
            &binaries.kube_controller_manager,
        ]
        .into_iter()
        .filter(|p| !p.is_file())
        .map(|p| {
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
        if !missing.is_empty() {
            bail!(
                "Kubernetes binaries not found at {} (missing: {}): run `make k8s-bins` \
                 (or point {BIN_DIR_ENV} at a directory holding them)",
                dir.display(),
                missing.join(", ")
            );
        }
        Ok(binaries)
    }
}

fn cache_bin_dir(cache: &Path) -> PathBuf {
    cache.join("k8s").join(K8S_VERSION).join("bin")
}

/// The Cargo workspace root, fixed at compile time (this crate is `e2e/testenv`).
pub fn workspace_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // Resolved, so paths in errors and process lists read plainly.
    std::fs::canonicalize(&root).unwrap_or(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binaries_name_the_make_target() {
        let dir = tempfile::tempdir().unwrap();
        let err = Binaries::in_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("run `make k8s-bins`"), "{err}");
        assert!(err.contains("kube-apiserver"), "{err}");
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
    }

    #[test]
    fn version_matches_the_go_module_that_builds_the_binaries() {
        let go_mod = workspace_root().join("e2e/k8s/kubernetes/go.mod");
        let text = std::fs::read_to_string(&go_mod).unwrap();
        let pinned = format!("require k8s.io/kubernetes {K8S_VERSION}");
        assert!(
            text.lines().any(|l| l.trim() == pinned),
            "{} does not pin {K8S_VERSION}: update K8S_VERSION",
            go_mod.display()
        );
    }
}
