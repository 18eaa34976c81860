//! `build` and `image`.

use super::{error, load, service};

#[test]
fn string_and_mapping_forms() {
    let s = service("services:\n  web:\n    build: ./app\n", "web");
    let b = s.build.unwrap();
    assert_eq!(b.context, "/proj/app");
    assert_eq!(b.dockerfile, None);
    let s = service(
        "services:\n  web:\n    build:\n      context: .\n      dockerfile: Dockerfile.dev\n      target: builder\n      args:\n        - NODE_ENV=development\n        - FROM_ENV\n",
        "web",
    );
    let b = s.build.unwrap();
    assert_eq!(b.context, "/proj");
    assert_eq!(b.dockerfile.as_deref(), Some("Dockerfile.dev"));
    assert_eq!(b.target.as_deref(), Some("builder"));
    assert_eq!(b.args["NODE_ENV"].as_deref(), Some("development"));
    assert_eq!(b.args["FROM_ENV"], None);
}

#[test]
fn remote_contexts_stay_as_written_and_default_images_are_named() {
    let p = load("name: shop\nservices:\n  web:\n    build: https://github.com/example/app.git#main\n  db:\n    image: postgres\n");
    assert_eq!(
        p.services["web"].build.as_ref().unwrap().context,
        "https://github.com/example/app.git#main"
    );
    let images: Vec<String> = p.images().into_iter().collect();
    assert_eq!(images, ["postgres", "shop-web"]);
}

#[test]
fn a_service_needs_an_image_or_a_build() {
    assert_eq!(
        error("services:\n  web:\n    ports: ['80:80']\n"),
        "compose.yaml:2:3: services.web: missing `image` or `build`: say which image to run or how to build it"
    );
    assert_eq!(
        error("services:\n  web:\n    image: ''\n"),
        "compose.yaml:3:5: services.web.image: expected a non-empty string"
    );
}

#[test]
fn unimplemented_build_keys_are_rejected() {
    assert_eq!(
        error("services:\n  web:\n    build:\n      context: .\n      cache_from: [x]\n"),
        "compose.yaml:5:7: services.web.build.cache_from: `cache_from` is not supported yet (berth does not implement it); remove it"
    );
}
