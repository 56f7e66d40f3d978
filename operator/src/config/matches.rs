//! HTTPRouteGroup matches in the contract's shape.

use meshlet_crds::contract::config::HttpMatch;
use meshlet_crds::specs::v1alpha4;

/// One HTTPRouteGroup match as the proxy reads it.
pub fn http_match(m: &v1alpha4::HttpMatch) -> HttpMatch {
    HttpMatch {
        name: Some(m.name.clone()),
        path_regex: m.path_regex.clone(),
        methods: m.methods.iter().map(|x| x.as_str().to_string()).collect(),
        headers: m.headers.0.clone(),
    }
}
