//! Profiles from flags and `COMPOSE_PROFILES`.

use super::{errors_of, load_files, load_opts};

const FILE: &str = "services:\n  web:\n    image: x\n  debug:\n    image: x\n    profiles: [debug]\n  tools:\n    image: x\n    profiles: [tools, debug]\n    depends_on: [debug]\n";

#[test]
fn only_services_of_active_profiles_are_enabled() {
    let p = load_files(&[("compose.yaml", FILE)], &[]).unwrap();
    assert_eq!(p.services.keys().collect::<Vec<_>>(), ["web"]);
    assert_eq!(
        p.all_profiles().into_iter().collect::<Vec<_>>(),
        ["debug", "tools"]
    );
    let p = load_opts(&[("compose.yaml", FILE)], &[], |o| {
        o.profiles = vec!["debug".into()]
    })
    .unwrap();
    assert_eq!(p.services.len(), 3);
    let p = load_files(
        &[("compose.yaml", FILE)],
        &[("COMPOSE_PROFILES", "debug, other")],
    )
    .unwrap();
    assert_eq!(p.services.len(), 3);
}

#[test]
fn a_required_dependency_in_an_inactive_profile_is_an_error() {
    let file = "services:\n  tools:\n    image: x\n    profiles: [tools]\n    depends_on: [debug]\n  debug:\n    image: x\n    profiles: [debug]\n";
    let e = errors_of(load_opts(&[("compose.yaml", file)], &[], |o| {
        o.profiles = vec!["tools".into()]
    }));
    assert_eq!(
        e,
        ["compose.yaml:5:18: services.tools.depends_on.debug: service `debug` is disabled (profiles: debug); enable it with --profile debug"]
    );
}
