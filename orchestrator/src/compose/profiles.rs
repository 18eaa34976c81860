//! Phase 6: apply profiles.
//!
//! A service without `profiles` is always enabled; one with profiles is enabled when one of them
//! is active (`--profile`, `COMPOSE_PROFILES`, or `*` for all). Disabled services move to
//! [`Project::disabled_services`]. An enabled service that requires a disabled one is an error
//! naming the profiles to enable; an optional dependency (`required: false`) on a disabled
//! service is dropped.

use std::collections::BTreeSet;

use super::error::Diagnostics;
use super::model::Project;
use super::parse::join_key;

/// Whether a service with these profiles is enabled.
pub(crate) fn enabled(profiles: &[String], active: &BTreeSet<String>) -> bool {
    profiles.is_empty() || active.contains("*") || profiles.iter().any(|p| active.contains(p))
}

/// Splits the project's services into enabled and disabled ones.
pub(crate) fn apply(project: &mut Project, active: &BTreeSet<String>, errors: &mut Diagnostics) {
    let names: Vec<String> = project.services.keys().cloned().collect();
    for name in names {
        let on = project
            .services
            .get(&name)
            .is_some_and(|s| enabled(&s.profiles, active));
        if !on {
            if let Some(svc) = project.services.remove(&name) {
                project.disabled_services.insert(name, svc);
            }
        }
    }
    for (name, svc) in project.services.iter_mut() {
        let mut dropped = Vec::new();
        for (dep, d) in &svc.depends_on {
            let Some(disabled) = project.disabled_services.get(dep) else {
                continue;
            };
            if !d.required {
                dropped.push(dep.clone());
                continue;
            }
            let list = disabled.profiles.join(", ");
            let flags: Vec<String> = disabled
                .profiles
                .iter()
                .map(|p| format!("--profile {p}"))
                .collect();
            errors.push(
                join_key(&join_key(&join_key("services", name), "depends_on"), dep),
                format!(
                    "service `{dep}` is disabled (profiles: {list}); enable it with {}",
                    flags.join(" or ")
                ),
            );
        }
        for dep in dropped {
            svc.depends_on.remove(&dep);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::service::{DependsOn, Service};
    use super::*;

    fn svc(profiles: &[&str], deps: &[(&str, bool)]) -> Service {
        let mut s = Service {
            image: Some("x".into()),
            profiles: profiles.iter().map(|p| p.to_string()).collect(),
            ..Service::default()
        };
        for (d, required) in deps {
            s.depends_on.insert(
                d.to_string(),
                DependsOn {
                    required: *required,
                    ..DependsOn::default()
                },
            );
        }
        s
    }

    fn project() -> Project {
        let mut p = Project::default();
        p.services
            .insert("web".into(), svc(&[], &[("debug", false)]));
        p.services
            .insert("debug".into(), svc(&["debug", "dev"], &[]));
        p.services
            .insert("tool".into(), svc(&["tools"], &[("debug", true)]));
        p
    }

    #[test]
    fn services_without_profiles_are_always_on() {
        let mut p = project();
        let mut errors = Diagnostics::default();
        apply(&mut p, &BTreeSet::new(), &mut errors);
        assert_eq!(p.services.keys().collect::<Vec<_>>(), ["web"]);
        assert!(
            p.services["web"].depends_on.is_empty(),
            "optional dep dropped"
        );
        assert_eq!(p.disabled_services.len(), 2);
        assert!(errors.is_empty());
    }

    #[test]
    fn a_required_disabled_dependency_is_an_error_naming_the_profiles() {
        let mut p = project();
        let mut errors = Diagnostics::default();
        apply(&mut p, &["tools".to_string()].into(), &mut errors);
        assert_eq!(
            errors.to_string(),
            "services.tool.depends_on.debug: service `debug` is disabled (profiles: debug, dev); \
             enable it with --profile debug or --profile dev"
        );
    }

    #[test]
    fn star_enables_everything() {
        let mut p = project();
        let mut errors = Diagnostics::default();
        apply(&mut p, &["*".to_string()].into(), &mut errors);
        assert_eq!(p.services.len(), 3);
        assert!(errors.is_empty());
        assert_eq!(
            p.all_profiles().into_iter().collect::<Vec<_>>(),
            ["debug", "dev", "tools"]
        );
    }
}
