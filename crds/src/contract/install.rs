//! Names of Meshlet's own installed objects that other parts refer to: its
//! namespace, the webhook Service and its paths, the operator Service, and
//! the webhook configurations.

/// Namespace Meshlet's control plane runs in.
pub const NAMESPACE: &str = "meshlet-system";

/// Service in front of `meshlet-webhook` (admission and CRD conversion).
pub const WEBHOOK_SERVICE: &str = "meshlet-webhook";
/// Port of [`WEBHOOK_SERVICE`] (HTTPS).
pub const WEBHOOK_SERVICE_PORT: u16 = 443;
/// Path of the CRD conversion webhook (ConversionReview v1), used by every
/// SMI CRD's `spec.conversion.webhook.clientConfig`.
pub const CONVERT_PATH: &str = "/convert";
/// Path of the validating webhook for SMI objects.
pub const VALIDATE_PATH: &str = "/validate";
/// Path of the mutating webhook that injects the proxy into pods.
pub const INJECT_PATH: &str = "/inject";

/// Name of the MutatingWebhookConfiguration for proxy injection.
pub const INJECT_WEBHOOK_CONFIGURATION: &str = "meshlet-inject";
/// Name of the ValidatingWebhookConfiguration for SMI objects.
pub const VALIDATE_WEBHOOK_CONFIGURATION: &str = "meshlet-validate";

/// Service in front of `meshlet-operator` (config stream, identity, metrics API).
pub const OPERATOR_SERVICE: &str = "meshlet-operator";

/// In-cluster DNS name of a Service in [`NAMESPACE`]:
/// `<service>.meshlet-system.svc`, the name its serving certificate carries.
pub fn service_dns_name(service: &str) -> String {
    format!("{service}.{NAMESPACE}.svc")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        assert_eq!(
            service_dns_name(WEBHOOK_SERVICE),
            "meshlet-webhook.meshlet-system.svc"
        );
    }

    #[test]
    fn paths_are_distinct_and_absolute() {
        let paths = [CONVERT_PATH, VALIDATE_PATH, INJECT_PATH];
        for p in paths {
            assert!(p.starts_with('/'));
        }
        assert_ne!(CONVERT_PATH, VALIDATE_PATH);
        assert_ne!(VALIDATE_PATH, INJECT_PATH);
    }
}
