//! HTTP request matches (HTTPRouteGroup semantics): anchored path regex,
//! methods (`*` = any), header value regexes; all set parts must match.

use meshlet_crds::contract::config::HttpMatch;
use regex::Regex;

/// What a match looks at in a request.
#[derive(Clone, Copy, Debug)]
pub struct RequestView<'a> {
    /// The method.
    pub method: &'a http::Method,
    /// The path, without query.
    pub path: &'a str,
    /// The headers.
    pub headers: &'a http::HeaderMap,
}

/// A compiled [`HttpMatch`].
#[derive(Debug, Clone)]
pub struct CompiledMatch {
    /// The match's name, if any.
    pub name: Option<String>,
    path: Option<Regex>,
    methods: Vec<http::Method>,
    headers: Vec<(http::HeaderName, Regex)>,
}

fn anchored(field: &str, re: &str) -> Result<Regex, String> {
    Regex::new(&format!("^(?:{re})$")).map_err(|e| format!("{field}: invalid regex {re:?}: {e}"))
}

impl CompiledMatch {
    /// Compiles `m`; errors name the offending field under `field`.
    pub fn compile(m: &HttpMatch, field: &str) -> Result<Self, String> {
        let path = m
            .path_regex
            .as_deref()
            .map(|re| anchored(&format!("{field}.pathRegex"), re))
            .transpose()?;
        let methods = if m.methods.iter().any(|x| x == "*") {
            Vec::new()
        } else {
            m.methods
                .iter()
                .map(|x| {
                    http::Method::from_bytes(x.to_ascii_uppercase().as_bytes())
                        .map_err(|_| format!("{field}.methods: invalid method {x:?}"))
                })
                .collect::<Result<_, _>>()?
        };
        let headers = m
            .headers
            .iter()
            .map(|(k, v)| {
                let name = http::HeaderName::from_bytes(k.as_bytes())
                    .map_err(|_| format!("{field}.headers: invalid header name {k:?}"))?;
                Ok((name, anchored(&format!("{field}.headers.{k}"), v)?))
            })
            .collect::<Result<_, String>>()?;
        Ok(Self {
            name: m.name.clone(),
            path,
            methods,
            headers,
        })
    }

    /// Whether the match constrains the path.
    pub fn has_path_regex(&self) -> bool {
        self.path.is_some()
    }

    /// Whether the request matches.
    pub fn matches(&self, req: &RequestView<'_>) -> bool {
        if let Some(re) = &self.path {
            if !re.is_match(req.path) {
                return false;
            }
        }
        if !self.methods.is_empty() && !self.methods.contains(req.method) {
            return false;
        }
        self.headers.iter().all(|(name, re)| {
            req.headers
                .get_all(name)
                .iter()
                .any(|v| v.to_str().is_ok_and(|v| re.is_match(v)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view<'a>(m: &'a http::Method, path: &'a str, h: &'a http::HeaderMap) -> RequestView<'a> {
        RequestView {
            method: m,
            path,
            headers: h,
        }
    }

    #[test]
    fn path_regex_is_anchored() {
        let m = CompiledMatch::compile(
            &HttpMatch {
                path_regex: Some("/api/.*".into()),
                ..Default::default()
            },
            "m",
        )
        .unwrap();
        let h = http::HeaderMap::new();
        assert!(m.matches(&view(&http::Method::GET, "/api/x", &h)));
        assert!(!m.matches(&view(&http::Method::GET, "/v1/api/x", &h)));
        assert!(!m.matches(&view(&http::Method::GET, "/ap", &h)));
    }

    #[test]
    fn methods_and_headers_must_match() {
        let mut hm = std::collections::BTreeMap::new();
        hm.insert("x-canary".to_string(), "yes|true".to_string());
        let m = CompiledMatch::compile(
            &HttpMatch {
                methods: vec!["get".into()],
                headers: hm,
                ..Default::default()
            },
            "m",
        )
        .unwrap();
        let mut h = http::HeaderMap::new();
        assert!(!m.matches(&view(&http::Method::GET, "/", &h)));
        h.insert("x-canary", "true".parse().unwrap());
        assert!(m.matches(&view(&http::Method::GET, "/", &h)));
        assert!(!m.matches(&view(&http::Method::POST, "/", &h)));
        h.insert("x-canary", "truest".parse().unwrap());
        assert!(!m.matches(&view(&http::Method::GET, "/", &h)));
    }

    #[test]
    fn star_means_any_method() {
        let m = CompiledMatch::compile(
            &HttpMatch {
                methods: vec!["*".into()],
                ..Default::default()
            },
            "m",
        )
        .unwrap();
        let h = http::HeaderMap::new();
        assert!(m.matches(&view(&http::Method::DELETE, "/", &h)));
    }

    #[test]
    fn bad_regex_names_the_field() {
        let e = CompiledMatch::compile(
            &HttpMatch {
                path_regex: Some("(".into()),
                ..Default::default()
            },
            "split.matches[0]",
        )
        .unwrap_err();
        assert!(e.starts_with("split.matches[0].pathRegex"), "{e}");
    }
}
