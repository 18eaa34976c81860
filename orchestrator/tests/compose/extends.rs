//! `extends` in the same file and from another file.

use super::{error, errors, errors_of, load, load_files};

#[test]
fn a_service_extends_one_in_the_same_file() {
    let p = load(
        "services:\n  base:\n    image: app\n    environment: [A=1, B=2]\n    ports: ['80']\n  web:\n    extends: base\n    environment: [B=3]\n    command: serve\n  worker:\n    extends:\n      service: web\n    command: work\n",
    );
    let web = &p.services["web"];
    assert_eq!(web.image.as_deref(), Some("app"));
    assert_eq!(web.environment["A"].as_deref(), Some("1"));
    assert_eq!(web.environment["B"].as_deref(), Some("3"));
    let worker = &p.services["worker"];
    assert_eq!(worker.command.as_deref().unwrap(), ["work"]);
    assert_eq!(worker.ports.len(), 1);
}

#[test]
fn a_base_in_another_file_keeps_its_relative_paths() {
    let p = load_files(
        &[
            (
                "compose.yaml",
                "services:\n  web:\n    extends:\n      file: common/base.yaml\n      service: app\n    ports: ['80:80']\n",
            ),
            (
                "common/base.yaml",
                "services:\n  app:\n    build: ./src\n    volumes: ['./data:/data']\n    env_file: app.env\n",
            ),
            ("common/app.env", "FROM_FILE=1\n"),
        ],
        &[],
    )
    .unwrap();
    let web = &p.services["web"];
    assert_eq!(web.build.as_ref().unwrap().context, "/proj/common/src");
    assert_eq!(web.volumes[0].source.as_deref(), Some("/proj/common/data"));
    assert_eq!(web.environment["FROM_FILE"].as_deref(), Some("1"));
}

#[test]
fn unknown_bases_and_cycles_are_errors() {
    assert_eq!(
        error("services:\n  base:\n    image: x\n  web:\n    extends: bsae\n"),
        "compose.yaml:5:5: services.web.extends: extends unknown service `bsae` (did you mean `base`?)"
    );
    assert_eq!(
        error("services:\n  a:\n    extends: b\n  b:\n    extends: a\n"),
        "compose.yaml:3:5: services.a.extends: extends cycle: a -> b -> a"
    );
    let e = errors_of(load_files(
        &[(
            "compose.yaml",
            "services:\n  web:\n    extends: {file: nope.yaml, service: x}\n",
        )],
        &[],
    ));
    assert_eq!(
        e,
        ["compose.yaml:3:5: services.web.extends: cannot read nope.yaml: No such file or directory"]
    );
}

#[test]
fn errors_inherited_from_a_base_point_at_the_base() {
    let e = errors(
        "services:\n  base:\n    image: x\n    restart: sometimes\n  web:\n    extends: base\n",
    );
    let tail = "expected \"no\", \"always\", \"on-failure\", \"on-failure:N\" or \"unless-stopped\", found \"sometimes\"";
    assert_eq!(
        e,
        [
            format!("compose.yaml:4:5: services.base.restart: {tail}"),
            format!("compose.yaml:4:5: services.web.restart: {tail}"),
        ]
    );
}
