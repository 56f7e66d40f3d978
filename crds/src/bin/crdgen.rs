//! Writes the SMI CRD manifests generated from the Rust types into a folder
//! (`make crds` runs `crdgen crds/yaml`), one file per CRD, and removes
//! stale generated files there.

use std::path::PathBuf;
use std::process::ExitCode;

use meshlet_crds::manifests::{self, CrdRender};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(dir), None) = (args.next(), args.next()) else {
        eprintln!("usage: crdgen <output-dir>\n\nWrites one YAML file per SMI CRD (all versions served, webhook conversion) into <output-dir>.");
        return ExitCode::from(2);
    };
    let dir = PathBuf::from(dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("crdgen: cannot create {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    let crds = manifests::all(CrdRender::Full);
    let wanted: Vec<String> = crds.iter().map(manifests::file_name).collect();
    // Remove generated files of CRDs that no longer exist.
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let generated = std::fs::read_to_string(entry.path())
                .map(|text| text.starts_with(manifests::YAML_HEADER))
                .unwrap_or(false);
            if generated && !wanted.contains(&name) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    for crd in &crds {
        let path = dir.join(manifests::file_name(crd));
        if let Err(e) = std::fs::write(&path, manifests::to_yaml(crd)) {
            eprintln!("crdgen: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
