//! The state of one conversion: the project, the options, the objects and warnings so far, and
//! the object names of every compose key, chosen once so that every reference agrees and no
//! two objects of a kind share a name.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::names::{is_qualified_key, is_subdomain, label_name, service_name};
use super::{Object, Options, Warning, LABEL_PROJECT, LABEL_SERVICE};
use crate::compose::Project;

/// Shared state while converting one project.
pub(crate) struct Ctx<'a> {
    pub project: &'a Project,
    pub opts: &'a Options,
    pub objects: Vec<Object>,
    pub warnings: Vec<Warning>,
    /// Compose service to the name of its workload and Service.
    services: BTreeMap<String, String>,
    /// Top-level volume, config and secret keys to their object names.
    volumes: BTreeMap<String, String>,
    configs: BTreeMap<String, String>,
    secrets: BTreeMap<String, String>,
    /// Names taken, by kind.
    taken: BTreeSet<(&'static str, String)>,
}

impl<'a> Ctx<'a> {
    /// Chooses the names of every service, volume, config and secret.
    pub fn new(project: &'a Project, opts: &'a Options) -> Self {
        let mut ctx = Ctx {
            project,
            opts,
            objects: Vec::new(),
            warnings: Vec::new(),
            services: BTreeMap::new(),
            volumes: BTreeMap::new(),
            configs: BTreeMap::new(),
            secrets: BTreeMap::new(),
            taken: BTreeSet::new(),
        };
        for key in project.services.keys() {
            let name = ctx.unique("Service", service_name(key));
            if name != key.to_lowercase() {
                ctx.warn(
                    key,
                    "name",
                    format!(
                        "not a valid Service name; the service is named {name} in the cluster, \
                         so the host name {key} does not resolve there"
                    ),
                );
            }
            ctx.taken.insert(("Deployment", name.clone()));
            ctx.taken.insert(("Job", name.clone()));
            ctx.services.insert(key.clone(), name);
        }
        // External objects first: their names are given, ours make way.
        for external in [true, false] {
            for (key, v) in project
                .volumes
                .iter()
                .filter(|(_, v)| v.external == external)
            {
                let name =
                    ctx.external_name("PersistentVolumeClaim", "volumes", key, external, &v.name);
                ctx.volumes.insert(key.clone(), name);
            }
            for (key, c) in project
                .configs
                .iter()
                .filter(|(_, c)| c.external == external)
            {
                let name = ctx.external_name("ConfigMap", "configs", key, external, &c.name);
                ctx.configs.insert(key.clone(), name);
            }
            for (key, s) in project
                .secrets
                .iter()
                .filter(|(_, s)| s.external == external)
            {
                let name = ctx.external_name("Secret", "secrets", key, external, &s.name);
                ctx.secrets.insert(key.clone(), name);
            }
        }
        ctx
    }

    /// The name of a top-level object: the key as a label, or the external name as it is.
    fn external_name(
        &mut self,
        kind: &'static str,
        section: &str,
        key: &str,
        external: bool,
        external_name: &str,
    ) -> String {
        if !external {
            return self.unique(kind, label_name(key));
        }
        self.taken.insert((kind, external_name.to_string()));
        if !is_subdomain(external_name) {
            self.warn_top(
                format!("{section}.{key}.name"),
                format!("{external_name}: not a valid {kind} name; the reference will be rejected"),
            );
        }
        external_name.to_string()
    }

    /// `wanted`, or `wanted-2`, `wanted-3`, ... when a `kind` of that name exists already.
    pub fn unique(&mut self, kind: &'static str, wanted: String) -> String {
        let wanted: String = wanted.chars().take(63).collect();
        let wanted = wanted.trim_end_matches('-').to_string();
        let mut name = wanted.clone();
        let mut n = 2;
        while self.taken.contains(&(kind, name.clone())) {
            let suffix = format!("-{n}");
            let stem: String = wanted.chars().take(63 - suffix.len()).collect();
            name = format!("{}{suffix}", stem.trim_end_matches('-'));
            n += 1;
        }
        self.taken.insert((kind, name.clone()));
        name
    }

    /// Whether a `kind` named `name` exists already.
    pub fn is_taken(&self, kind: &'static str, name: &str) -> bool {
        self.taken.contains(&(kind, name.to_string()))
    }

    /// The workload and Service name of a compose service.
    pub fn service(&self, key: &str) -> String {
        self.services
            .get(key)
            .cloned()
            .unwrap_or_else(|| service_name(key))
    }

    /// The claim name of a named volume.
    pub fn volume(&self, key: &str) -> String {
        self.volumes
            .get(key)
            .cloned()
            .unwrap_or_else(|| label_name(key))
    }

    /// The ConfigMap name of a config.
    pub fn config(&self, key: &str) -> String {
        self.configs
            .get(key)
            .cloned()
            .unwrap_or_else(|| label_name(key))
    }

    /// The Secret name of a secret.
    pub fn secret(&self, key: &str) -> String {
        self.secrets
            .get(key)
            .cloned()
            .unwrap_or_else(|| label_name(key))
    }

    /// Records a warning about `service`'s `key`.
    pub fn warn(&mut self, service: &str, key: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Warning {
            service: Some(service.to_string()),
            key: key.into(),
            message: message.into(),
        });
    }

    /// Records a warning about a top-level key (`volumes.data.driver`).
    pub fn warn_top(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Warning {
            service: None,
            key: key.into(),
            message: message.into(),
        });
    }

    /// Metadata with the name, namespace and project labels set.
    pub fn meta(&self, name: &str, service: Option<&str>) -> ObjectMeta {
        let mut labels = BTreeMap::from([
            (LABEL_PROJECT.to_string(), label_name(&self.project.name)),
            (
                "app.kubernetes.io/managed-by".to_string(),
                "berth".to_string(),
            ),
        ]);
        if let Some(s) = service {
            labels.insert(LABEL_SERVICE.to_string(), self.service(s));
        }
        ObjectMeta {
            name: Some(name.to_string()),
            namespace: self.opts.namespace.clone(),
            labels: Some(labels),
            ..ObjectMeta::default()
        }
    }

    /// The pod selector of a service.
    pub fn selector(&self, service: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (LABEL_PROJECT.to_string(), label_name(&self.project.name)),
            (LABEL_SERVICE.to_string(), self.service(service)),
        ])
    }

    /// Compose labels as annotations; keys Kubernetes rejects are left out with a warning.
    pub fn annotations(
        &mut self,
        scope: Option<&str>,
        section: &str,
        labels: &BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (k, v) in labels {
            if is_qualified_key(k) {
                out.insert(k.clone(), v.clone());
                continue;
            }
            let key = format!("{section}.{k}");
            let message = "not a valid annotation key; left out";
            match scope {
                Some(s) => self.warn(s, key, message),
                None => self.warn_top(key, message),
            }
        }
        out
    }
}
