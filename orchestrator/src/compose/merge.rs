//! Phase 3: merge several compose files (and `extends` bases) into one document.
//!
//! Rules of the Compose specification: mappings merge key by key, scalars are replaced, sequences
//! are appended, with these exceptions for service keys:
//! - `command`, `entrypoint` and `healthcheck.test` are replaced, not appended;
//! - `environment`, `labels`, `sysctls`, `extra_hosts`, `depends_on`, `networks` and
//!   `build.args` merge as mappings whichever syntax (list or mapping) each file uses;
//! - `ports`, `volumes`, `secrets` and `configs` are unique by their identity (ports by address,
//!   host port, container port and protocol; mounts, secrets and configs by target): a later entry
//!   replaces an earlier one with the same identity;
//! - `expose`, `dns`, `cap_add`, `cap_drop`, `tmpfs`, `profiles` and `env_file` keep one copy of
//!   each value;
//! - a `null` value never erases a mapping (`networks: {front: }` keeps `front`'s aliases).
//!
//! `!reset` removes the key from the result (whatever the value after the tag), `!override`
//! replaces the earlier value instead of merging with it. Tags left after merging are stripped
//! by [`strip_tags`].

use serde_yaml::value::TaggedValue;
use serde_yaml::{Mapping, Value};

use super::shorthand::{hosts_list_to_map, kv_list_to_map, parse_port, parse_volume, port_key};

const RESET: &str = "reset";
const OVERRIDE: &str = "override";

fn tag_is(t: &TaggedValue, name: &str) -> bool {
    t.tag == name
}

/// Merges an override document into `base` (both are top-level compose mappings).
pub(crate) fn merge_documents(base: &mut Mapping, over: Mapping) {
    for (key, value) in over {
        if key.as_str() == Some("services") {
            merge_entry(base, key, value, &|b, o| {
                merge_map_with(b, o, &merge_service_value)
            });
        } else {
            merge_entry(base, key, value, &generic);
        }
    }
}

/// Merges service definition `over` into `base` with the service rules.
pub(crate) fn merge_service(base: &mut Mapping, over: Mapping) {
    for (key, value) in over {
        let rule: &dyn Fn(&mut Value, Value) = match key.as_str().unwrap_or("") {
            "command" | "entrypoint" => &replace,
            "environment" => &|b, o| as_maps(b, o, Value::Null),
            "labels" | "sysctls" => &|b, o| as_maps(b, o, Value::String(String::new())),
            "extra_hosts" => &merge_hosts,
            "depends_on" | "networks" => &|b, o| {
                names_to_map(b);
                let mut o = o;
                names_to_map(&mut o);
                generic(b, o)
            },
            "build" => &merge_build,
            // Every healthcheck key, `test` included, is replaced rather than merged.
            "healthcheck" => &|b, o| merge_map_with(b, o, &replace),
            "ports" => &|b, o| keyed_append(b, o, &port_identity),
            "volumes" => &|b, o| keyed_append(b, o, &mount_identity),
            "secrets" | "configs" => &|b, o| keyed_append(b, o, &file_ref_identity),
            "expose" | "dns" | "cap_add" | "cap_drop" | "tmpfs" | "profiles" | "env_file"
            | "dns_search" => &unique_append,
            _ => &generic,
        };
        merge_entry(base, key, value, rule);
    }
}

fn merge_service_value(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => merge_service(b, o),
        (b, o) => generic(b, o),
    }
}

/// Applies `!reset` and `!override` on one key, else merges with `rule`.
fn merge_entry(base: &mut Mapping, key: Value, over: Value, rule: &dyn Fn(&mut Value, Value)) {
    match over {
        Value::Tagged(t) if tag_is(&t, RESET) => {
            base.shift_remove(&key);
        }
        Value::Tagged(t) if tag_is(&t, OVERRIDE) => {
            base.insert(key, strip_tags(t.value));
        }
        over => match base.get_mut(&key) {
            Some(existing) => rule(existing, over),
            None => {
                base.insert(key, strip_tags(over));
            }
        },
    }
}

/// Mapping merge where each shared key uses `rule`.
fn merge_map_with(base: &mut Value, over: Value, rule: &dyn Fn(&mut Value, Value)) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                merge_entry(b, k, v, rule);
            }
        }
        (Value::Mapping(_), Value::Null) => {}
        (b, o) => *b = strip_tags(o),
    }
}

/// The default rule: mappings merge, sequences append, anything else is replaced.
fn generic(base: &mut Value, over: Value) {
    match (base, over) {
        (b @ Value::Mapping(_), o @ Value::Mapping(_)) => merge_map_with(b, o, &generic),
        (Value::Mapping(_), Value::Null) => {}
        (Value::Sequence(b), Value::Sequence(o)) => b.extend(o.into_iter().map(strip_tags)),
        (b, o) => *b = strip_tags(o),
    }
}

fn replace(base: &mut Value, over: Value) {
    *base = strip_tags(over);
}

/// Converts both sides from `KEY=VALUE` lists to mappings, then merges.
fn as_maps(base: &mut Value, over: Value, missing: Value) {
    let to_map = |v: &mut Value| {
        if let Value::Sequence(items) = v {
            if let Some(m) = kv_list_to_map(items, &missing) {
                *v = Value::Mapping(m);
            }
        }
    };
    to_map(base);
    let mut over = over;
    to_map(&mut over);
    generic(base, over)
}

fn to_hosts_map(v: &mut Value) {
    if let Value::Sequence(items) = v {
        if let Some(m) = hosts_list_to_map(items) {
            *v = Value::Mapping(m);
        }
    }
}

/// Extra hosts merge by host name; a later file's addresses for a host replace earlier ones.
fn merge_hosts(base: &mut Value, over: Value) {
    to_hosts_map(base);
    let mut over = over;
    to_hosts_map(&mut over);
    merge_map_with(base, over, &replace)
}

/// `[a, b]` to `{a: null, b: null}` (depends_on and networks list syntax).
fn names_to_map(v: &mut Value) {
    if let Value::Sequence(items) = v {
        if items.iter().all(|i| i.is_string()) {
            let m: Mapping = items.iter().map(|i| (i.clone(), Value::Null)).collect();
            *v = Value::Mapping(m);
        }
    }
}

fn merge_build(base: &mut Value, over: Value) {
    let to_map = |v: &mut Value| {
        if let Value::String(s) = v {
            let mut m = Mapping::new();
            m.insert("context".into(), Value::String(std::mem::take(s)));
            *v = Value::Mapping(m);
        }
    };
    to_map(base);
    let mut over = over;
    to_map(&mut over);
    // build.args merges like environment whatever the syntax; the other keys are scalars.
    merge_map_with(base, over, &|b, o| {
        if b.is_sequence() || b.is_mapping() {
            as_maps(b, o, Value::Null)
        } else {
            replace(b, o)
        }
    })
}

/// Appends `over`'s items, an item replacing an earlier one with the same identity.
fn keyed_append(base: &mut Value, over: Value, identity: &dyn Fn(&Value) -> Option<String>) {
    let (Value::Sequence(b), Value::Sequence(o)) = (&mut *base, &over) else {
        return generic(base, over);
    };
    for item in o {
        let item = strip_tags(item.clone());
        let key = identity(&item);
        match key.and_then(|k| b.iter().position(|x| identity(x).as_deref() == Some(&k))) {
            Some(i) => b[i] = item,
            None => b.push(item),
        }
    }
}

/// Appends the items of `over` that `base` does not hold yet.
fn unique_append(base: &mut Value, over: Value) {
    if let Value::String(_) = base {
        *base = Value::Sequence(vec![std::mem::take(base)]);
    }
    let over = match over {
        s @ Value::String(_) => Value::Sequence(vec![s]),
        o => o,
    };
    match (&mut *base, over) {
        (Value::Sequence(b), Value::Sequence(o)) => {
            for item in o.into_iter().map(strip_tags) {
                if !b.contains(&item) {
                    b.push(item);
                }
            }
        }
        (b, o) => *b = strip_tags(o),
    }
}

fn port_identity(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => parse_port(s)
            .ok()
            .map(|ps| ps.iter().map(port_key).collect::<Vec<_>>().join(",")),
        Value::Number(n) => Some(format!("::{n}/tcp")),
        Value::Mapping(m) => {
            let text = |k: &str| {
                m.get(k)
                    .and_then(super::read::scalar_text)
                    .unwrap_or_default()
            };
            let protocol = match text("protocol") {
                p if p.is_empty() => "tcp".to_string(),
                p => p,
            };
            Some(format!(
                "{}:{}:{}/{}",
                text("host_ip"),
                text("published"),
                text("target"),
                protocol
            ))
        }
        _ => None,
    }
}

fn mount_identity(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => parse_volume(s).ok().map(|m| m.target),
        Value::Mapping(m) => m.get("target").and_then(|t| t.as_str()).map(str::to_string),
        _ => None,
    }
}

fn file_ref_identity(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Mapping(m) => m
            .get("target")
            .or_else(|| m.get("source"))
            .and_then(|t| t.as_str())
            .map(str::to_string),
        _ => None,
    }
}

fn is_reset(v: &Value) -> bool {
    matches!(v, Value::Tagged(t) if tag_is(t, RESET))
}

/// Removes the merge tags from a document: `!reset` entries disappear, `!override` values
/// become plain values. Other tags are kept (the normalize phase rejects them).
pub(crate) fn strip_tags(mut value: Value) -> Value {
    strip_tags_in_place(&mut value);
    value
}

/// [`strip_tags`] without rebuilding untagged parts of the tree.
pub(crate) fn strip_tags_in_place(value: &mut Value) {
    match value {
        Value::Tagged(t) if tag_is(t, OVERRIDE) || tag_is(t, RESET) => {
            *value = std::mem::take(&mut t.value);
            strip_tags_in_place(value);
        }
        Value::Mapping(m) => {
            if m.values().any(is_reset) {
                m.retain(|_, v| !is_reset(v));
            }
            for (_, v) in m.iter_mut() {
                strip_tags_in_place(v);
            }
        }
        Value::Sequence(s) => {
            s.retain(|v| !is_reset(v));
            s.iter_mut().for_each(strip_tags_in_place);
        }
        Value::Tagged(t) => strip_tags_in_place(&mut t.value),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merged(base: &str, over: &str) -> Value {
        let mut b: Value = serde_yaml::from_str(base).unwrap();
        let o: Value = serde_yaml::from_str(over).unwrap();
        let Value::Mapping(bm) = &mut b else { panic!() };
        let Value::Mapping(om) = o else { panic!() };
        merge_documents(bm, om);
        strip_tags(b)
    }

    fn svc(doc: &Value) -> &Value {
        &doc["services"]["web"]
    }

    fn yaml(s: &str) -> Value {
        serde_yaml::from_str(s).unwrap()
    }

    #[test]
    fn scalars_replace_and_mappings_merge() {
        let d = merged(
            "services: {web: {image: a, deploy: {replicas: 1, resources: {limits: {cpus: 1}}}}}",
            "services: {web: {image: b, deploy: {replicas: 2}}, db: {image: pg}}",
        );
        assert_eq!(svc(&d)["image"], yaml("b"));
        assert_eq!(
            svc(&d)["deploy"],
            yaml("{replicas: 2, resources: {limits: {cpus: 1}}}")
        );
        assert_eq!(d["services"]["db"]["image"], yaml("pg"));
    }

    #[test]
    fn commands_are_replaced_not_appended() {
        let d = merged(
            "services: {web: {command: [a, b], entrypoint: x, healthcheck: {test: [CMD, a], retries: 3}}}",
            "services: {web: {command: [c], healthcheck: {test: [CMD, b]}}}",
        );
        assert_eq!(svc(&d)["command"], yaml("[c]"));
        assert_eq!(svc(&d)["healthcheck"], yaml("{test: [CMD, b], retries: 3}"));
    }

    #[test]
    fn environment_merges_across_syntaxes() {
        let d = merged(
            "services: {web: {environment: [A=1, B=2, C], labels: {x: '1'}}}",
            "services: {web: {environment: {B: '3', D: '4'}, labels: [y=2, z]}}",
        );
        assert_eq!(
            svc(&d)["environment"],
            yaml("{A: '1', B: '3', C: null, D: '4'}")
        );
        assert_eq!(svc(&d)["labels"], yaml("{x: '1', y: '2', z: ''}"));
    }

    #[test]
    fn ports_and_volumes_are_unique_by_identity() {
        let d = merged(
            "services: {web: {ports: ['80:80', '443:443'], volumes: ['./a:/data', 'v:/cache']}}",
            "services: {web: {ports: ['80:80', {target: 9000}], volumes: [{type: bind, source: ./b, target: /data}]}}",
        );
        assert_eq!(
            svc(&d)["ports"],
            yaml("['80:80', '443:443', {target: 9000}]")
        );
        assert_eq!(
            svc(&d)["volumes"],
            yaml("[{type: bind, source: ./b, target: /data}, 'v:/cache']")
        );
    }

    #[test]
    fn sequences_append_and_unique_lists_dedupe() {
        let d = merged(
            "services: {web: {dns: [1.1.1.1], cap_add: [NET_ADMIN], env_file: a.env, x-list: [1]}}",
            "services: {web: {dns: [1.1.1.1, 8.8.8.8], cap_add: [NET_ADMIN, SYS_TIME], env_file: [b.env], x-list: [2]}}",
        );
        assert_eq!(svc(&d)["dns"], yaml("[1.1.1.1, 8.8.8.8]"));
        assert_eq!(svc(&d)["cap_add"], yaml("[NET_ADMIN, SYS_TIME]"));
        assert_eq!(svc(&d)["env_file"], yaml("[a.env, b.env]"));
        assert_eq!(svc(&d)["x-list"], yaml("[1, 2]"));
    }

    #[test]
    fn depends_on_and_networks_merge_as_maps_and_null_keeps_details() {
        let d = merged(
            "services: {web: {depends_on: [db], networks: {front: {aliases: [w]}}}}",
            "services: {web: {depends_on: {cache: {condition: service_healthy}}, networks: [front, back]}}",
        );
        assert_eq!(
            svc(&d)["depends_on"],
            yaml("{db: null, cache: {condition: service_healthy}}")
        );
        assert_eq!(
            svc(&d)["networks"],
            yaml("{front: {aliases: [w]}, back: null}")
        );
    }

    #[test]
    fn build_string_and_mapping_merge() {
        let d = merged(
            "services: {web: {build: ./app}, api: {build: {context: ., args: {B: '2'}}}}",
            "services: {web: {build: {target: dev}}, api: {build: {args: [A=1]}}}",
        );
        assert_eq!(svc(&d)["build"], yaml("{context: ./app, target: dev}"));
        assert_eq!(
            d["services"]["api"]["build"],
            yaml("{context: ., args: {B: '2', A: '1'}}")
        );
    }

    #[test]
    fn reset_removes_and_override_replaces() {
        let d = merged(
            "services: {web: {ports: ['80:80'], environment: {A: '1', B: '2'}, labels: {x: y}}, old: {image: x}}",
            "services: {web: {ports: !reset [], environment: !override {C: '3'}, labels: {x: !reset null}}, old: !reset null}",
        );
        assert!(svc(&d).get("ports").is_none());
        assert_eq!(svc(&d)["environment"], yaml("{C: '3'}"));
        assert_eq!(svc(&d)["labels"], yaml("{}"));
        assert!(d["services"].get("old").is_none());
    }

    #[test]
    fn extra_hosts_replace_per_host() {
        let d = merged(
            "services: {web: {extra_hosts: ['db:10.0.0.1', 'cache:10.0.0.2']}}",
            "services: {web: {extra_hosts: {db: [10.0.0.9]}}}",
        );
        assert_eq!(
            svc(&d)["extra_hosts"],
            yaml("{db: [10.0.0.9], cache: [10.0.0.2]}")
        );
    }

    #[test]
    fn strip_tags_cleans_a_single_file() {
        let v = strip_tags(yaml(
            "{a: !reset 1, b: !override [1], c: [!reset x, y], d: !custom 3}",
        ));
        assert_eq!(v["b"], yaml("[1]"));
        assert_eq!(v["c"], yaml("[y]"));
        assert!(v.get("a").is_none());
        assert!(matches!(v["d"], Value::Tagged(_)));
    }
}
