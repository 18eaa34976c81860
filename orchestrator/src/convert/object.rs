//! The emitted objects: one enum over the k8s-openapi types, their apply order, stable file
//! names and YAML rendering.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, PersistentVolumeClaim, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::ConvertError;

/// One emitted object. The variants are in apply order: what others refer to comes first.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // a handful per project
pub enum Object {
    /// The namespace given with `--namespace`.
    Namespace(Namespace),
    /// The ServiceAccount of pods whose init containers wait through the API.
    ServiceAccount(ServiceAccount),
    /// A Role.
    Role(Role),
    /// A RoleBinding.
    RoleBinding(RoleBinding),
    /// A ConfigMap.
    ConfigMap(ConfigMap),
    /// A Secret.
    Secret(Secret),
    /// A PersistentVolumeClaim.
    PersistentVolumeClaim(PersistentVolumeClaim),
    /// A NetworkPolicy.
    NetworkPolicy(NetworkPolicy),
    /// A Service.
    Service(Service),
    /// A Job.
    Job(Job),
    /// A Deployment.
    Deployment(Deployment),
}

/// Evaluates `$body` with `$o` bound to the typed object inside any variant.
macro_rules! each {
    ($obj:expr, $o:ident => $body:expr) => {
        match $obj {
            Object::Namespace($o) => $body,
            Object::ServiceAccount($o) => $body,
            Object::Role($o) => $body,
            Object::RoleBinding($o) => $body,
            Object::ConfigMap($o) => $body,
            Object::Secret($o) => $body,
            Object::PersistentVolumeClaim($o) => $body,
            Object::NetworkPolicy($o) => $body,
            Object::Service($o) => $body,
            Object::Job($o) => $body,
            Object::Deployment($o) => $body,
        }
    };
}

impl Object {
    /// The object's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Object::Namespace(_) => "Namespace",
            Object::ServiceAccount(_) => "ServiceAccount",
            Object::Role(_) => "Role",
            Object::RoleBinding(_) => "RoleBinding",
            Object::ConfigMap(_) => "ConfigMap",
            Object::Secret(_) => "Secret",
            Object::PersistentVolumeClaim(_) => "PersistentVolumeClaim",
            Object::NetworkPolicy(_) => "NetworkPolicy",
            Object::Service(_) => "Service",
            Object::Job(_) => "Job",
            Object::Deployment(_) => "Deployment",
        }
    }

    /// Position of the kind in apply order.
    pub fn order(&self) -> usize {
        match self {
            Object::Namespace(_) => 0,
            Object::ServiceAccount(_) => 1,
            Object::Role(_) => 2,
            Object::RoleBinding(_) => 3,
            Object::ConfigMap(_) => 4,
            Object::Secret(_) => 5,
            Object::PersistentVolumeClaim(_) => 6,
            Object::NetworkPolicy(_) => 7,
            Object::Service(_) => 8,
            Object::Job(_) => 9,
            Object::Deployment(_) => 10,
        }
    }

    /// The object's metadata.
    pub fn meta(&self) -> &ObjectMeta {
        each!(self, o => &o.metadata)
    }

    /// The object's name.
    pub fn name(&self) -> &str {
        self.meta().name.as_deref().unwrap_or_default()
    }

    /// A stable file name that sorts in apply order: `<order>-<kind>-<name>.yaml`, for
    /// example `10-deployment-web.yaml`.
    pub fn file_name(&self) -> String {
        format!(
            "{:02}-{}-{}.yaml",
            self.order(),
            self.kind().to_lowercase(),
            self.name()
        )
    }

    /// Whether `name` has the form of [`Object::file_name`] for one of the kinds.
    pub fn is_file_name(name: &str) -> bool {
        const KINDS: [&str; 11] = [
            "namespace",
            "serviceaccount",
            "role",
            "rolebinding",
            "configmap",
            "secret",
            "persistentvolumeclaim",
            "networkpolicy",
            "service",
            "job",
            "deployment",
        ];
        let Some(stem) = name.strip_suffix(".yaml") else {
            return false;
        };
        let mut parts = stem.splitn(3, '-');
        let (Some(order), Some(kind), Some(rest)) = (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        KINDS
            .iter()
            .position(|k| *k == kind)
            .is_some_and(|i| order == format!("{i:02}"))
            && super::names::is_subdomain(rest)
    }

    /// The object as one YAML document (with apiVersion and kind), readable alike by YAML 1.1
    /// (kubectl) and 1.2 parsers.
    pub fn to_yaml(&self) -> Result<String, ConvertError> {
        let value = each!(self, o => serde_json::to_value(o));
        let value = value.map_err(|source| ConvertError::Render {
            kind: self.kind(),
            name: self.name().to_string(),
            source,
        })?;
        Ok(super::yaml::to_string(&value))
    }
}

/// The result of a conversion.
#[derive(Debug, Clone, Default)]
pub struct Converted {
    /// Objects in apply order (kind order, then name).
    pub objects: Vec<Object>,
    /// What could not be expressed, sorted (top-level keys first, then by service and key).
    pub warnings: Vec<super::Warning>,
}

impl Converted {
    /// All objects as one YAML stream, documents separated by `---`.
    pub fn to_yaml(&self) -> Result<String, ConvertError> {
        let mut out = String::new();
        for (i, o) in self.objects.iter().enumerate() {
            if i > 0 {
                out.push_str("---\n");
            }
            out.push_str(&o.to_yaml()?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_recognised_by_kind_and_order() {
        assert!(Object::is_file_name("10-deployment-web.yaml"));
        assert!(Object::is_file_name("08-service-web-published.yaml"));
        assert!(!Object::is_file_name("08-deployment-web.yaml"));
        assert!(!Object::is_file_name("10-deployment-web.yml"));
        assert!(!Object::is_file_name("notes.yaml"));
        assert!(!Object::is_file_name("10-deployment-.yaml"));
        let o = Object::Service(Service {
            metadata: ObjectMeta {
                name: Some("db".into()),
                ..ObjectMeta::default()
            },
            ..Service::default()
        });
        assert_eq!(o.file_name(), "08-service-db.yaml");
        assert!(Object::is_file_name(&o.file_name()));
    }
}
