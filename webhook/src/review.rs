//! The three review handlers, bytes in and bytes out: AdmissionReview v1
//! for `/inject` and `/validate`, ConversionReview v1 for `/convert`. They
//! decode, call the pure logic (`inject`, `validate`, `meshlet_crds`
//! conversion) and encode; errors become review responses, never panics.

use k8s_openapi::api::core::v1::Pod;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::core::conversion::{ConversionRequest, ConversionResponse, ConversionReview};
use kube::core::{DynamicObject, Status};
use serde_json::Value;

use crate::inject::{self, Decision, InjectorSettings};
use crate::namespaces::Namespaces;
use crate::validate;

fn encode<T: serde::Serialize>(review: &T) -> Vec<u8> {
    serde_json::to_vec(review).expect("reviews serialize")
}

/// `/inject`: answers an AdmissionReview for a Pod with the injection patch.
/// `trust_anchors` is the bundle for the proxy, or why there is none (then
/// a pod that would be injected is refused with that message).
pub async fn inject(
    body: &[u8],
    settings: &InjectorSettings,
    trust_anchors: Result<Option<String>, String>,
    namespaces: &Namespaces,
) -> Vec<u8> {
    let review: AdmissionReview<Pod> = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return encode(
                &AdmissionResponse::invalid(format!("bad AdmissionReview: {e}")).into_review(),
            )
        }
    };
    let request: AdmissionRequest<Pod> = match review.try_into() {
        Ok(r) => r,
        Err(e) => return encode(&AdmissionResponse::invalid(e.to_string()).into_review()),
    };
    let response = AdmissionResponse::from(&request);
    let Some(pod) = request
        .object
        .as_ref()
        .filter(|_| request.operation == Operation::Create)
    else {
        return encode(&response.into_review());
    };
    let namespace_name = request
        .namespace
        .clone()
        .or_else(|| pod.metadata.namespace.clone())
        .unwrap_or_default();
    let namespace = namespaces.get(&namespace_name).await;
    let pod_name = pod
        .metadata
        .name
        .clone()
        .or_else(|| pod.metadata.generate_name.clone().map(|g| format!("{g}*")))
        .unwrap_or_default();
    let with_anchors;
    let settings = match &trust_anchors {
        Ok(Some(pem)) => {
            with_anchors = InjectorSettings {
                trust_anchors_pem: pem.clone(),
                ..settings.clone()
            };
            &with_anchors
        }
        _ => settings,
    };
    let response = match inject::decide(pod, &namespace, settings) {
        Ok(Decision::Skip(reason)) => {
            tracing::debug!(
                namespace = namespace_name,
                pod = pod_name,
                reason = reason.as_str(),
                "not injected"
            );
            response
        }
        Ok(Decision::Inject(_)) if trust_anchors.is_err() => {
            let why = trust_anchors.unwrap_err();
            tracing::warn!(namespace = namespace_name, pod = pod_name, error = %why, "refused");
            response.deny(why)
        }
        Ok(Decision::Inject(patch)) => {
            tracing::debug!(namespace = namespace_name, pod = pod_name, "injected");
            match response.with_patch(patch) {
                Ok(r) => r,
                Err(e) => AdmissionResponse::from(&request).deny(format!("meshlet injection: {e}")),
            }
        }
        Err(e) => {
            tracing::info!(namespace = namespace_name, pod = pod_name, error = %e, "refused");
            response.deny(e.to_string())
        }
    };
    encode(&response.into_review())
}

/// `/validate`: answers an AdmissionReview for an SMI object.
pub fn validate(body: &[u8]) -> Vec<u8> {
    let review: AdmissionReview<DynamicObject> = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return encode(
                &AdmissionResponse::invalid(format!("bad AdmissionReview: {e}")).into_review(),
            )
        }
    };
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(r) => r,
        Err(e) => return encode(&AdmissionResponse::invalid(e.to_string()).into_review()),
    };
    let response = AdmissionResponse::from(&request);
    let Some(object) = request
        .object
        .as_ref()
        .filter(|_| matches!(request.operation, Operation::Create | Operation::Update))
    else {
        return encode(&response.into_review());
    };
    // An object being deleted must stay editable (finalizers must go),
    // even if it is invalid by rules added since it was written.
    if object.metadata.deletion_timestamp.is_some() {
        return encode(&response.into_review());
    }
    let value = serde_json::to_value(object).unwrap_or(Value::Null);
    let namespace = request.namespace.clone().unwrap_or_default();
    let violations = validate::validate(&value, &namespace);
    if violations.is_empty() {
        return encode(&response.into_review());
    }
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("object");
    let name = object
        .metadata
        .name
        .clone()
        .unwrap_or_else(|| request.name.clone());
    let mut denied = response.deny(validate::message(kind, &name, &violations));
    denied.result.reason = "Invalid".into();
    denied.result.code = 422;
    encode(&denied.into_review())
}

/// `/convert`: answers a ConversionReview with every object converted to
/// the desired version, or a failure naming the object and field.
pub fn convert(body: &[u8]) -> Vec<u8> {
    let review: ConversionReview = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return encode(
                &ConversionResponse::invalid(Status::failure(
                    &format!("bad ConversionReview: {e}"),
                    "BadRequest",
                ))
                .into_review(),
            )
        }
    };
    let request = match ConversionRequest::from_review(review) {
        Ok(r) => r,
        Err(e) => {
            return encode(
                &ConversionResponse::invalid(Status::failure(&e.to_string(), "BadRequest"))
                    .into_review(),
            )
        }
    };
    let desired = request.desired_api_version.clone();
    let converted: Result<Vec<Value>, String> = request
        .objects
        .iter()
        .map(|obj| {
            meshlet_crds::conversion::convert(obj, &desired).map_err(|e| {
                let name = obj
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                format!("converting {name:?} to {desired}: {e}")
            })
        })
        .collect();
    let response = ConversionResponse::for_request(request);
    let response = match converted {
        Ok(objects) => response.success(objects),
        Err(message) => response.failure(Status::failure(&message, "ConversionFailed")),
    };
    encode(&response.into_review())
}
