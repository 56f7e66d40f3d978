//! Who is asking, as an aggregated API server must decide it: the request
//! came through kube-apiserver's front proxy (a client certificate signed
//! by the requestheader CA, with an allowed common name, both published in
//! `kube-system/extension-apiserver-authentication`), and the user it
//! names in the `X-Remote-*` headers may read the resource (a
//! SubjectAccessReview).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::PostParams;
use kube::{Api, Client};
use rustls::pki_types::CertificateDer;

/// Namespace and name of the ConfigMap kube-apiserver publishes.
pub const AUTH_CONFIGMAP: (&str, &str) = ("kube-system", "extension-apiserver-authentication");

/// The front proxy's settings, as published by kube-apiserver.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FrontProxy {
    /// The requestheader client CA, PEM.
    pub client_ca_pem: String,
    /// Common names the proxy's certificate may have; empty: any.
    pub allowed_names: Vec<String>,
    /// Headers carrying the user name, in order of preference.
    pub username_headers: Vec<String>,
    /// Headers carrying the groups.
    pub group_headers: Vec<String>,
    /// Prefixes of headers carrying extra attributes.
    pub extra_prefixes: Vec<String>,
}

fn json_list(data: &BTreeMap<String, String>, key: &str) -> Result<Vec<String>> {
    match data.get(key) {
        None => Ok(Vec::new()),
        Some(text) if text.trim().is_empty() => Ok(Vec::new()),
        Some(text) => serde_json::from_str(text).with_context(|| {
            format!(
                "{}/{}: {key} is not a JSON list of strings",
                AUTH_CONFIGMAP.0, AUTH_CONFIGMAP.1
            )
        }),
    }
}

impl FrontProxy {
    /// Reads the settings from the ConfigMap's data.
    pub fn from_data(data: &BTreeMap<String, String>) -> Result<FrontProxy> {
        let client_ca_pem = data
            .get("requestheader-client-ca-file")
            .cloned()
            .filter(|s| !s.trim().is_empty())
            .with_context(|| {
                format!(
                    "{}/{} has no requestheader-client-ca-file: kube-apiserver runs without --requestheader-client-ca-file, so it cannot call aggregated APIs",
                    AUTH_CONFIGMAP.0, AUTH_CONFIGMAP.1
                )
            })?;
        Ok(FrontProxy {
            client_ca_pem,
            allowed_names: json_list(data, "requestheader-allowed-names")?,
            username_headers: json_list(data, "requestheader-username-headers")?,
            group_headers: json_list(data, "requestheader-group-headers")?,
            extra_prefixes: json_list(data, "requestheader-extra-headers-prefix")?,
        })
    }

    /// Reads the ConfigMap.
    pub async fn load(client: &Client) -> Result<FrontProxy> {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), AUTH_CONFIGMAP.0);
        let cm = api.get(AUTH_CONFIGMAP.1).await.with_context(|| {
            format!(
                "reading ConfigMap {}/{}",
                AUTH_CONFIGMAP.0, AUTH_CONFIGMAP.1
            )
        })?;
        FrontProxy::from_data(&cm.data.unwrap_or_default())
    }

    /// Whether the verified client certificate `leaf` is the front proxy's:
    /// its common name is allowed. (Its signature was checked by the TLS
    /// handshake against the requestheader CA.)
    pub fn allows(&self, leaf: &CertificateDer<'_>) -> Result<(), String> {
        if self.allowed_names.is_empty() {
            return Ok(());
        }
        let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref())
            .map_err(|e| format!("client certificate: {e}"))?;
        let cn = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or_default()
            .to_string();
        if self.allowed_names.contains(&cn) {
            Ok(())
        } else {
            Err(format!(
                "client certificate CN {cn:?} is not in requestheader-allowed-names {:?}",
                self.allowed_names
            ))
        }
    }

    /// The user the front proxy names in `headers`.
    pub fn user(&self, headers: &http::HeaderMap) -> Option<User> {
        let value = |h: &str| {
            headers
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let name = self
            .username_headers
            .iter()
            .find_map(|h| value(h).filter(|v| !v.is_empty()))?;
        let groups = self
            .group_headers
            .iter()
            .flat_map(|h| headers.get_all(h.as_str()).iter())
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect();
        let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in headers {
            let k = k.as_str();
            for prefix in &self.extra_prefixes {
                if let Some(key) = k.strip_prefix(&prefix.to_ascii_lowercase()) {
                    if let Ok(v) = v.to_str() {
                        extra
                            .entry(key.to_string())
                            .or_default()
                            .push(v.to_string());
                    }
                }
            }
        }
        Some(User {
            name,
            groups,
            extra,
        })
    }
}

/// A user named by the front proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// User name.
    pub name: String,
    /// Groups.
    pub groups: Vec<String>,
    /// Extra attributes.
    pub extra: BTreeMap<String, Vec<String>>,
}

/// What a request reads, for the SubjectAccessReview.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// `get` or `list`.
    pub verb: &'static str,
    /// API version.
    pub version: String,
    /// Resource (plural).
    pub resource: String,
    /// `edges` or empty.
    pub subresource: String,
    /// Namespace, empty for cluster scope.
    pub namespace: String,
    /// Name, empty for lists.
    pub name: String,
}

/// Whether `user` may do `access`; `Err` carries the reason for a 403.
pub async fn authorize(client: &Client, user: &User, access: &Access) -> Result<(), String> {
    let some = |s: &String| (!s.is_empty()).then(|| s.clone());
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.name.clone()),
            groups: Some(user.groups.clone()),
            extra: Some(user.extra.clone()),
            resource_attributes: Some(ResourceAttributes {
                group: Some(meshlet_crds::metrics::GROUP.into()),
                version: Some(access.version.clone()),
                resource: Some(access.resource.clone()),
                subresource: some(&access.subresource),
                namespace: some(&access.namespace),
                name: some(&access.name),
                verb: Some(access.verb.into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: Api<SubjectAccessReview> = Api::all(client.clone());
    let done = api
        .create(&PostParams::default(), &review)
        .await
        .map_err(|e| format!("SubjectAccessReview failed: {e}"))?;
    let status = done.status.unwrap_or_default();
    if status.allowed {
        return Ok(());
    }
    let what = if access.subresource.is_empty() {
        access.resource.clone()
    } else {
        format!("{}/{}", access.resource, access.subresource)
    };
    let scope = if access.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace {:?}", access.namespace)
    };
    Err(format!(
        "user {:?} cannot {} resource {what:?} in API group {:?} {scope}{}",
        user.name,
        access.verb,
        meshlet_crds::metrics::GROUP,
        status.reason.map(|r| format!(": {r}")).unwrap_or_default()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_configmap_and_the_headers() {
        let data: BTreeMap<String, String> = [
            ("requestheader-client-ca-file", "PEM"),
            ("requestheader-allowed-names", r#"["front-proxy-client"]"#),
            ("requestheader-username-headers", r#"["X-Remote-User"]"#),
            ("requestheader-group-headers", r#"["X-Remote-Group"]"#),
            (
                "requestheader-extra-headers-prefix",
                r#"["X-Remote-Extra-"]"#,
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let fp = FrontProxy::from_data(&data).unwrap();
        assert_eq!(fp.allowed_names, vec!["front-proxy-client"]);
        let mut h = http::HeaderMap::new();
        h.insert("x-remote-user", "alice".parse().unwrap());
        h.append("x-remote-group", "dev".parse().unwrap());
        h.append("x-remote-group", "system:authenticated".parse().unwrap());
        h.insert("x-remote-extra-scopes", "read".parse().unwrap());
        let u = fp.user(&h).unwrap();
        assert_eq!(u.name, "alice");
        assert_eq!(u.groups, vec!["dev", "system:authenticated"]);
        assert_eq!(u.extra["scopes"], vec!["read"]);
        assert_eq!(fp.user(&http::HeaderMap::new()), None);
        let e = FrontProxy::from_data(&BTreeMap::new()).unwrap_err();
        assert!(
            format!("{e:#}").contains("requestheader-client-ca-file"),
            "{e:#}"
        );
    }
}
