//! URL paths of the metrics API and what each asks for.

use super::workloads::Kind;

/// A served version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// `v1alpha1`.
    V1alpha1,
    /// `v1alpha2`.
    V1alpha2,
}

impl Version {
    /// The URL segment.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V1alpha1 => "v1alpha1",
            Version::V1alpha2 => "v1alpha2",
        }
    }
}

/// What a path asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `/apis/metrics.smi-spec.io`: the APIGroup.
    Group,
    /// `/apis/metrics.smi-spec.io/VERSION`: the APIResourceList.
    Resources(Version),
    /// A list of every object of a kind, in a namespace or all.
    List {
        /// Version.
        version: Version,
        /// Kind.
        kind: Kind,
        /// Namespace; `None`: every namespace.
        namespace: Option<String>,
    },
    /// One object's metrics.
    Get {
        /// Version.
        version: Version,
        /// Kind.
        kind: Kind,
        /// Namespace (empty for namespaces).
        namespace: String,
        /// Name.
        name: String,
    },
    /// One object's edges.
    Edges {
        /// Version.
        version: Version,
        /// Kind.
        kind: Kind,
        /// Namespace (empty for namespaces).
        namespace: String,
        /// Name.
        name: String,
    },
}

/// The route for `path`, or a message saying what is not served.
pub fn parse(path: &str) -> Result<Route, String> {
    let rest = path
        .strip_prefix("/apis/metrics.smi-spec.io")
        .ok_or_else(|| format!("{path}: only /apis/metrics.smi-spec.io/... is served here"))?;
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let Some((&version, segs)) = segs.split_first() else {
        return Ok(Route::Group);
    };
    let version = match version {
        "v1alpha1" => Version::V1alpha1,
        "v1alpha2" => Version::V1alpha2,
        other => {
            return Err(format!(
                "version {other:?} of metrics.smi-spec.io is not served (v1alpha1, v1alpha2 are)"
            ))
        }
    };
    let kind = |plural: &str| {
        Kind::from_plural(plural).ok_or_else(|| {
            let served: Vec<&str> = Kind::ALL.iter().map(|k| k.plural()).collect();
            format!(
                "the server could not find the requested resource: {plural:?} is not a resource of metrics.smi-spec.io/{} (served: {})",
                version.as_str(),
                served.join(", ")
            )
        })
    };
    let namespaced = |k: Kind| {
        if k.namespaced() {
            Ok(k)
        } else {
            Err(format!("{} is not namespaced", k.plural()))
        }
    };
    let s = |x: &str| x.to_string();
    Ok(match segs {
        [] => Route::Resources(version),
        ["namespaces"] => Route::List {
            version,
            kind: Kind::Namespace,
            namespace: None,
        },
        ["namespaces", name] => Route::Get {
            version,
            kind: Kind::Namespace,
            namespace: String::new(),
            name: s(name),
        },
        ["namespaces", name, "edges"] => Route::Edges {
            version,
            kind: Kind::Namespace,
            namespace: String::new(),
            name: s(name),
        },
        ["namespaces", ns, plural] => Route::List {
            version,
            kind: namespaced(kind(plural)?)?,
            namespace: Some(s(ns)),
        },
        ["namespaces", ns, plural, name] => Route::Get {
            version,
            kind: namespaced(kind(plural)?)?,
            namespace: s(ns),
            name: s(name),
        },
        ["namespaces", ns, plural, name, "edges"] => Route::Edges {
            version,
            kind: namespaced(kind(plural)?)?,
            namespace: s(ns),
            name: s(name),
        },
        [plural] => Route::List {
            version,
            kind: namespaced(kind(plural)?)?,
            namespace: None,
        },
        _ => {
            return Err(format!(
                "the server could not find the requested resource: {path}"
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let v = Version::V1alpha1;
        assert_eq!(parse("/apis/metrics.smi-spec.io").unwrap(), Route::Group);
        assert_eq!(
            parse("/apis/metrics.smi-spec.io/v1alpha1/").unwrap(),
            Route::Resources(v)
        );
        assert_eq!(
            parse("/apis/metrics.smi-spec.io/v1alpha1/namespaces/shop/deployments/web").unwrap(),
            Route::Get {
                version: v,
                kind: Kind::Deployment,
                namespace: "shop".into(),
                name: "web".into()
            }
        );
        assert_eq!(
            parse("/apis/metrics.smi-spec.io/v1alpha2/namespaces/shop/edges").unwrap(),
            Route::Edges {
                version: Version::V1alpha2,
                kind: Kind::Namespace,
                namespace: String::new(),
                name: "shop".into()
            }
        );
        assert_eq!(
            parse("/apis/metrics.smi-spec.io/v1alpha1/pods").unwrap(),
            Route::List {
                version: v,
                kind: Kind::Pod,
                namespace: None
            }
        );
        let e =
            parse("/apis/metrics.smi-spec.io/v1alpha1/namespaces/shop/services/web").unwrap_err();
        assert!(
            e.contains("\"services\" is not a resource") && e.contains("deployments"),
            "{e}"
        );
        assert!(parse("/apis/metrics.smi-spec.io/v9/pods")
            .unwrap_err()
            .contains("v9"));
        assert!(parse("/api/v1/pods").is_err());
    }
}
