//! The conditions an SMI object's status should have, from the findings
//! about it: `Accepted` (False when the object is applied only in part or
//! not at all) and `ResolvedRefs` (False when something it names does not
//! exist). Pure functions; the reasons are the findings' (the Event
//! reasons) and the messages name the field.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use meshlet_crds::split::status::{SmiStatus, ACCEPTED, RESOLVED_REFS};

use crate::config::findings::reason;
use crate::config::Finding;

/// Reasons about a referenced object that does not exist.
const REF_REASONS: &[&str] = &[
    reason::BACKEND_SERVICE_NOT_FOUND,
    reason::ROOT_SERVICE_NOT_FOUND,
    reason::ROUTE_NOT_FOUND,
    reason::ROUTE_MATCH_NOT_FOUND,
    reason::DESTINATION_NOT_FOUND,
];

/// The condition type a finding's reason belongs to.
pub fn condition_type(reason: &str) -> &'static str {
    if REF_REASONS.contains(&reason) {
        RESOLVED_REFS
    } else {
        ACCEPTED
    }
}

fn condition(
    type_: &str,
    findings: &[&Finding],
    ok_reason: &str,
    ok_message: &str,
    generation: Option<i64>,
    current: Option<&SmiStatus>,
    now: &Time,
) -> Condition {
    let mine: Vec<&&Finding> = findings
        .iter()
        .filter(|f| condition_type(f.reason) == type_)
        .collect();
    let (status, reason, message) = match mine.first() {
        None => ("True", ok_reason.to_string(), ok_message.to_string()),
        Some(first) => {
            let messages: Vec<&str> = mine.iter().map(|f| f.message.as_str()).collect();
            let mut message = messages.join("; ");
            if message.len() > 4000 {
                let mut end = 4000;
                while !message.is_char_boundary(end) {
                    end -= 1;
                }
                message.truncate(end);
            }
            ("False", first.reason.to_string(), message)
        }
    };
    // The transition time moves only when the status does.
    let last_transition_time = current
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
        .filter(|c| c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    Condition {
        type_: type_.into(),
        status: status.into(),
        reason,
        message,
        observed_generation: generation,
        last_transition_time,
    }
}

/// The status an object with `findings` (all about it) should have.
pub fn desired(
    findings: &[&Finding],
    generation: Option<i64>,
    current: Option<&SmiStatus>,
    now: &Time,
) -> SmiStatus {
    SmiStatus {
        conditions: vec![
            condition(
                ACCEPTED,
                findings,
                "Accepted",
                "applied to the proxies as written",
                generation,
                current,
                now,
            ),
            condition(
                RESOLVED_REFS,
                findings,
                "ResolvedRefs",
                "every object it refers to exists",
                generation,
                current,
                now,
            ),
        ],
    }
}

/// Whether two statuses say the same (transition times aside).
pub fn same(a: Option<&SmiStatus>, b: &SmiStatus) -> bool {
    let Some(a) = a else { return false };
    let key = |c: &Condition| {
        (
            c.type_.clone(),
            c.status.clone(),
            c.reason.clone(),
            c.message.clone(),
            c.observed_generation,
        )
    };
    let mut left: Vec<_> = a.conditions.iter().map(key).collect();
    let mut right: Vec<_> = b.conditions.iter().map(key).collect();
    left.sort();
    right.sort();
    left == right
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ObjectKey;

    fn finding(reason: &'static str, message: &str) -> Finding {
        Finding {
            object: ObjectKey {
                api_version: "split.smi-spec.io/v1alpha4".into(),
                kind: "TrafficSplit".into(),
                namespace: "n".into(),
                name: "s".into(),
                uid: None,
            },
            reason,
            message: message.into(),
        }
    }

    fn time(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    #[test]
    fn findings_become_conditions_naming_the_field() {
        let zero = finding(reason::ALL_WEIGHTS_ZERO, "every backend has weight 0");
        let missing = finding(
            reason::BACKEND_SERVICE_NOT_FOUND,
            "spec.backends[1]: service n/web-v3 does not exist",
        );
        let t0 = time("2026-01-01T00:00:00Z");
        let s = desired(&[&zero, &missing], Some(4), None, &t0);
        let accepted = &s.conditions[0];
        assert_eq!(
            (accepted.type_.as_str(), accepted.status.as_str()),
            ("Accepted", "False")
        );
        assert_eq!(accepted.reason, "AllWeightsZero");
        assert_eq!(accepted.observed_generation, Some(4));
        let refs = &s.conditions[1];
        assert_eq!(
            (refs.type_.as_str(), refs.status.as_str()),
            ("ResolvedRefs", "False")
        );
        assert_eq!(refs.reason, "BackendServiceNotFound");
        assert!(
            refs.message.contains("spec.backends[1]"),
            "{}",
            refs.message
        );

        // Fixed: both True; the transition time moves.
        let t1 = time("2026-01-01T00:01:00Z");
        let fixed = desired(&[], Some(5), Some(&s), &t1);
        assert!(fixed.conditions.iter().all(|c| c.status == "True"));
        assert!(fixed
            .conditions
            .iter()
            .all(|c| c.last_transition_time == t1));
        assert!(!same(Some(&s), &fixed));
        // Unchanged: the same status, the old transition time kept.
        let t2 = time("2026-01-01T00:02:00Z");
        let again = desired(&[], Some(5), Some(&fixed), &t2);
        assert!(same(Some(&fixed), &again));
        assert!(again
            .conditions
            .iter()
            .all(|c| c.last_transition_time == t1));
        assert!(!same(None, &again));
    }
}
