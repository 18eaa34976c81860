//! Checks shared by the `berth convert` tests: every emitted document deserialises strictly
//! into its k8s-openapi type (nothing is lost on the way back, so no field is unknown to the
//! API), and the rules the API server enforces beyond the schema hold (names, label keys and
//! values, unique container, port and volume names, mounts that refer to volumes, selectors
//! that match their pod templates).

#![allow(clippy::unwrap_used, dead_code)] // test helpers; each test crate uses a part

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, PersistentVolumeClaim, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use serde_json::Value;

/// Splits a multi-document YAML stream.
pub fn documents(text: &str) -> Vec<String> {
    text.split("\n---\n")
        .map(|d| d.trim_start_matches("---\n").to_string())
        .filter(|d| !d.trim().is_empty())
        .collect()
}

/// Deserialises `value` into `T` and back: it must come back equal, so every field is one `T`
/// knows (k8s-openapi ignores unknown fields on the way in).
fn strict<T: serde::de::DeserializeOwned + serde::Serialize>(value: &Value) {
    let typed: T = serde_json::from_value(value.clone())
        .unwrap_or_else(|e| panic!("not a {}: {e}\n{value:#}", std::any::type_name::<T>()));
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(
        &back,
        value,
        "{} lost fields: some are unknown to the API",
        std::any::type_name::<T>()
    );
}

/// Checks one YAML document strictly and against the API's rules; returns its kind.
pub fn check_document(doc: &str) -> String {
    let value: Value = serde_yaml::from_str(doc).unwrap_or_else(|e| panic!("{e}: {doc}"));
    let kind = value["kind"]
        .as_str()
        .unwrap_or_else(|| panic!("no kind: {doc}"))
        .to_string();
    match kind.as_str() {
        "Namespace" => strict::<Namespace>(&value),
        "Deployment" => strict::<Deployment>(&value),
        "Job" => strict::<Job>(&value),
        "Service" => strict::<Service>(&value),
        "NetworkPolicy" => strict::<NetworkPolicy>(&value),
        "PersistentVolumeClaim" => strict::<PersistentVolumeClaim>(&value),
        "ConfigMap" => strict::<ConfigMap>(&value),
        "Secret" => strict::<Secret>(&value),
        "ServiceAccount" => strict::<ServiceAccount>(&value),
        "Role" => strict::<Role>(&value),
        "RoleBinding" => strict::<RoleBinding>(&value),
        other => panic!("unexpected kind {other}"),
    }
    validate(&kind, &value);
    kind
}

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_label_value(s: &str) -> bool {
    s.is_empty()
        || (s.len() <= 63
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.ends_with(|c: char| c.is_ascii_alphanumeric())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
}

fn is_key(k: &str) -> bool {
    let (prefix, name) = k.rsplit_once('/').map_or((None, k), |(p, n)| (Some(p), n));
    prefix.is_none_or(|p| p.split('.').all(is_label)) && is_label_value(name) && !name.is_empty()
}

fn strings(v: &Value) -> impl Iterator<Item = (&String, &Value)> {
    v.as_object().into_iter().flatten()
}

fn items(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

fn check_meta(kind: &str, meta: &Value, named: bool) {
    if named {
        let name = meta["name"].as_str().unwrap();
        assert!(is_label(name), "{kind} name {name:?} is not a DNS label");
        if kind == "Service" {
            assert!(
                name.starts_with(|c: char| c.is_ascii_lowercase()),
                "Service name {name:?} must start with a letter"
            );
        }
    }
    for (k, v) in strings(&meta["labels"]) {
        assert!(is_key(k), "{kind}: label key {k:?}");
        assert!(
            is_label_value(v.as_str().unwrap()),
            "{kind}: label value {v}"
        );
    }
    for (k, _) in strings(&meta["annotations"]) {
        assert!(is_key(k), "{kind}: annotation key {k:?}");
    }
}

fn unique<'a>(what: &str, names: impl Iterator<Item = &'a str>) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    for n in names {
        assert!(seen.insert(n), "duplicate {what} {n:?}");
    }
    seen
}

fn check_pod(kind: &str, template: &Value) {
    check_meta(kind, &template["metadata"], false);
    let spec = &template["spec"];
    let volumes = unique(
        "volume",
        items(&spec["volumes"]).map(|v| v["name"].as_str().unwrap()),
    );
    for v in &volumes {
        assert!(is_label(v), "{kind}: volume name {v:?}");
    }
    let containers: Vec<&Value> = items(&spec["containers"])
        .chain(items(&spec["initContainers"]))
        .collect();
    assert!(
        items(&spec["containers"]).count() > 0,
        "{kind}: no container"
    );
    unique(
        "container",
        containers.iter().map(|c| c["name"].as_str().unwrap()),
    );
    for c in containers {
        let name = c["name"].as_str().unwrap();
        assert!(is_label(name), "{kind}: container name {name:?}");
        assert!(c["image"].as_str().is_some_and(|i| !i.is_empty()));
        unique(
            "mount path",
            items(&c["volumeMounts"]).map(|m| m["mountPath"].as_str().unwrap()),
        );
        for m in items(&c["volumeMounts"]) {
            let v = m["name"].as_str().unwrap();
            assert!(volumes.contains(v), "{kind}: mount of unknown volume {v}");
        }
        for p in items(&c["ports"]) {
            let port = p["containerPort"].as_i64().unwrap();
            assert!((1..=65535).contains(&port));
        }
    }
}

fn check_service(value: &Value) {
    let spec = &value["spec"];
    let ports: Vec<&Value> = items(&spec["ports"]).collect();
    if ports.is_empty() {
        assert_eq!(
            spec["clusterIP"], "None",
            "a Service without ports is headless"
        );
    }
    unique(
        "port name",
        ports.iter().map(|p| p["name"].as_str().unwrap()),
    );
    for p in ports {
        let name = p["name"].as_str().unwrap();
        assert!(name.len() <= 15 && is_label(name), "port name {name:?}");
        if let Some(n) = p["nodePort"].as_i64() {
            assert!((30000..=32767).contains(&n));
            assert_eq!(spec["type"], "NodePort");
        }
    }
}

/// The API server's rules beyond the schema.
fn validate(kind: &str, value: &Value) {
    check_meta(kind, &value["metadata"], true);
    match kind {
        "Deployment" | "Job" => {
            let template = &value["spec"]["template"];
            check_pod(kind, template);
            let labels = &template["metadata"]["labels"];
            if kind == "Deployment" {
                for (k, v) in strings(&value["spec"]["selector"]["matchLabels"]) {
                    assert_eq!(&labels[k], v, "selector does not match the template");
                }
            } else {
                let policy = template["spec"]["restartPolicy"].as_str().unwrap();
                assert!(["Never", "OnFailure"].contains(&policy));
            }
        }
        "Service" => check_service(value),
        _ => {}
    }
}
