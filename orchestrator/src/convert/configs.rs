//! Configs and secrets: top-level configs as ConfigMaps and secrets as Secrets (data read from
//! the file, the inline content or the environment variable), mounted at their targets with a
//! `subPath` so each file lands exactly where compose puts it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, KeyToPath, Secret, SecretVolumeSource, Volume as PodVolume,
    VolumeMount,
};
use k8s_openapi::ByteString;

use super::context::Ctx;
use super::names::label_name;
use super::{ConvertError, Object};
use crate::compose::{FileRef, Service};

/// The data key of every ConfigMap and Secret.
pub const DATA_KEY: &str = "content";

/// Adds a ConfigMap per config and a Secret per secret that is not external.
pub(crate) fn convert(ctx: &mut Ctx<'_>) -> Result<(), ConvertError> {
    let project = ctx.project;
    for (key, c) in project.configs.iter().filter(|(_, c)| !c.external) {
        let bytes = match (&c.content, &c.file, &c.environment) {
            (Some(text), _, _) => text.clone().into_bytes(),
            (None, Some(path), _) => read(path, "config", key)?,
            (None, None, Some(var)) => env(ctx, "configs", key, var),
            (None, None, None) => Vec::new(),
        };
        let meta = ctx.meta(&ctx.config(key), None);
        let mut cm = ConfigMap {
            metadata: meta,
            ..ConfigMap::default()
        };
        match String::from_utf8(bytes) {
            Ok(text) => cm.data = Some(BTreeMap::from([(DATA_KEY.to_string(), text)])),
            Err(e) => {
                cm.binary_data = Some(BTreeMap::from([(
                    DATA_KEY.to_string(),
                    ByteString(e.into_bytes()),
                )]))
            }
        }
        ctx.objects.push(Object::ConfigMap(cm));
    }
    for (key, s) in project.secrets.iter().filter(|(_, s)| !s.external) {
        let bytes = match (&s.file, &s.environment) {
            (Some(path), _) => read(path, "secret", key)?,
            (None, Some(var)) => env(ctx, "secrets", key, var),
            (None, None) => Vec::new(),
        };
        ctx.objects.push(Object::Secret(Secret {
            metadata: ctx.meta(&ctx.secret(key), None),
            type_: Some("Opaque".into()),
            data: Some(BTreeMap::from([(DATA_KEY.to_string(), ByteString(bytes))])),
            ..Secret::default()
        }));
    }
    Ok(())
}

fn read(path: &std::path::Path, kind: &'static str, name: &str) -> Result<Vec<u8>, ConvertError> {
    std::fs::read(path).map_err(|source| ConvertError::ReadFile {
        kind,
        name: name.to_string(),
        path: path.to_path_buf(),
        source,
    })
}

fn env(ctx: &mut Ctx<'_>, section: &str, key: &str, var: &str) -> Vec<u8> {
    match std::env::var(var) {
        Ok(v) => v.into_bytes(),
        Err(_) => {
            ctx.warn_top(
                format!("{section}.{key}.environment"),
                format!("{var} is not set; the data is empty"),
            );
            Vec::new()
        }
    }
}

/// Adds the volumes and mounts of the service's configs and secrets.
pub(crate) fn pod_volumes(
    ctx: &mut Ctx<'_>,
    name: &str,
    svc: &Service,
    volumes: &mut BTreeMap<String, PodVolume>,
    mounts: &mut Vec<VolumeMount>,
) {
    for (i, r) in svc.configs.iter().enumerate() {
        let object = ctx.config(&r.source);
        owner(ctx, name, &format!("configs[{i}]"), r);
        let vol_name = label_name(&format!("config-{i}-{object}"));
        volumes
            .entry(vol_name.clone())
            .or_insert_with(|| PodVolume {
                name: vol_name.clone(),
                config_map: Some(ConfigMapVolumeSource {
                    name: object,
                    items: Some(items(r)),
                    ..ConfigMapVolumeSource::default()
                }),
                ..PodVolume::default()
            });
        mounts.push(file_mount(vol_name, r));
    }
    for (i, r) in svc.secrets.iter().enumerate() {
        let object = ctx.secret(&r.source);
        owner(ctx, name, &format!("secrets[{i}]"), r);
        let vol_name = label_name(&format!("secret-{i}-{object}"));
        volumes
            .entry(vol_name.clone())
            .or_insert_with(|| PodVolume {
                name: vol_name.clone(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(object),
                    items: Some(items(r)),
                    ..SecretVolumeSource::default()
                }),
                ..PodVolume::default()
            });
        mounts.push(file_mount(vol_name, r));
    }
}

fn owner(ctx: &mut Ctx<'_>, name: &str, key: &str, r: &FileRef) {
    if r.uid.is_some() || r.gid.is_some() {
        ctx.warn(
            name,
            format!("{key}.uid"),
            "file ownership follows the pod's fsGroup; ignored",
        );
    }
    if let Some(mode) = r.mode.filter(|m| *m > 0o777) {
        ctx.warn(
            name,
            format!("{key}.mode"),
            format!("{mode:o}: only permission bits (0-777) carry over; the default is used"),
        );
    }
}

fn items(r: &FileRef) -> Vec<KeyToPath> {
    vec![KeyToPath {
        key: DATA_KEY.into(),
        path: DATA_KEY.into(),
        mode: r
            .mode
            .filter(|m| *m <= 0o777)
            .and_then(|m| i32::try_from(m).ok()),
        ..KeyToPath::default()
    }]
}

fn file_mount(vol_name: String, r: &FileRef) -> VolumeMount {
    VolumeMount {
        name: vol_name,
        mount_path: r.target.clone(),
        sub_path: Some(DATA_KEY.into()),
        read_only: Some(true),
        ..VolumeMount::default()
    }
}
