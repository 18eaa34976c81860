//! The instructions that only change the image config: ENV, LABEL, WORKDIR, USER, EXPOSE,
//! VOLUME, CMD, ENTRYPOINT, STOPSIGNAL, HEALTHCHECK, SHELL, MAINTAINER and ONBUILD, with
//! Docker's substitution rules (CMD, ENTRYPOINT, SHELL and HEALTHCHECK commands are not
//! substituted: the shell does that when they run).

use std::time::Duration;

use super::dockerfile::{Instruction, Keyword};
use super::words::{process_word, process_words, split_raw, Lookup, WordError};
use super::StepError;
use crate::image::config::{ConfigFile, Healthcheck};

/// The shell of the shell form when the image sets none.
pub const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// The argv of a command in exec form, or in shell form through the image's shell.
pub fn command(ins: &Instruction, shell: Option<&Vec<String>>) -> Vec<String> {
    match &ins.json {
        Some(j) => j.clone(),
        None => {
            let mut argv: Vec<String> = match shell {
                Some(s) if !s.is_empty() => s.clone(),
                _ => DEFAULT_SHELL.iter().map(|s| s.to_string()).collect(),
            };
            argv.push(ins.rest.clone());
            argv
        }
    }
}

/// `KEY=VALUE` pairs (or the legacy `KEY VALUE` of ENV), values substituted.
pub fn pairs(
    ins: &Instruction,
    escape: char,
    env: Lookup<'_>,
) -> Result<Vec<(String, String)>, WordError> {
    let raw = split_raw(&ins.rest, escape)?;
    let first_has_eq = raw.first().is_some_and(|w| w.contains('='));
    if ins.keyword == Keyword::Env && !first_has_eq {
        let (key, value) = ins
            .rest
            .split_once(char::is_whitespace)
            .unwrap_or((ins.rest.as_str(), ""));
        return Ok(vec![(
            key.to_string(),
            process_word(value.trim(), escape, env)?,
        )]);
    }
    let mut out = Vec::new();
    for w in raw {
        let (k, v) = w.split_once('=').unwrap_or((w.as_str(), ""));
        out.push((process_word(k, escape, env)?, process_word(v, escape, env)?));
    }
    Ok(out)
}

/// Sets `key` in a `KEY=VALUE` list, replacing an earlier value.
pub fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
    {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

/// Applies a config-only instruction. `cmd_set` tracks whether this stage set CMD (ENTRYPOINT
/// clears an inherited CMD, as Docker does).
pub fn apply(
    ins: &Instruction,
    escape: char,
    env: Lookup<'_>,
    cfg: &mut ConfigFile,
    cmd_set: &mut bool,
) -> Result<(), StepError> {
    let c = &mut cfg.config;
    let word = |s: &str| process_word(s, escape, env);
    let words = |s: &str| process_words(s, escape, env);
    match ins.keyword {
        Keyword::Env => {
            for (k, v) in pairs(ins, escape, env)? {
                if k.is_empty() {
                    return Err(StepError::Invalid("ENV names must not be empty".into()));
                }
                set_env(&mut c.env, &k, &v);
            }
        }
        Keyword::Label => {
            for (k, v) in pairs(ins, escape, env)? {
                c.labels.insert(k, v);
            }
        }
        Keyword::Workdir => {
            let w = word(&ins.rest)?;
            let joined = if w.starts_with('/') {
                w
            } else {
                format!("{}/{w}", c.working_dir.as_deref().unwrap_or(""))
            };
            c.working_dir = Some(format!("/{}", super::ignore::clean(&joined)));
        }
        Keyword::User => c.user = Some(word(&ins.rest)?),
        Keyword::StopSignal => {
            let s = word(&ins.rest)?;
            if crate::container::parse_signal(&s).is_none() {
                return Err(StepError::Invalid(format!("invalid signal {s:?}")));
            }
            c.stop_signal = Some(s);
        }
        Keyword::Expose => {
            for p in words(&ins.rest)? {
                c.exposed_ports.extend(expose(&p)?);
            }
        }
        Keyword::Volume => {
            let vols = match &ins.json {
                Some(j) => j.iter().map(|v| word(v)).collect::<Result<Vec<_>, _>>()?,
                None => words(&ins.rest)?,
            };
            c.volumes.extend(vols.into_iter().filter(|v| !v.is_empty()));
        }
        Keyword::Cmd => {
            c.cmd = Some(command(ins, c.shell.as_ref()));
            *cmd_set = true;
        }
        Keyword::Entrypoint => {
            c.entrypoint = Some(command(ins, c.shell.as_ref()));
            if !*cmd_set {
                c.cmd = None;
            }
        }
        Keyword::Shell => c.shell = ins.json.clone(),
        Keyword::Healthcheck => c.healthcheck = Some(healthcheck(ins)?),
        Keyword::Maintainer => cfg.author = Some(ins.rest.clone()),
        Keyword::Onbuild => c.on_build.push(ins.rest.clone()),
        Keyword::From | Keyword::Run | Keyword::Copy | Keyword::Add | Keyword::Arg => {}
    }
    Ok(())
}

/// `80`, `80/udp`, `8000-8002/tcp` as `PORT/PROTO` entries.
fn expose(p: &str) -> Result<Vec<String>, StepError> {
    let (ports, proto) = p.split_once('/').unwrap_or((p, "tcp"));
    let proto = proto.to_ascii_lowercase();
    let bad = || StepError::Invalid(format!("invalid port {p:?}"));
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(bad());
    }
    let (lo, hi) = ports.split_once('-').unwrap_or((ports, ports));
    let lo: u16 = lo.parse().map_err(|_| bad())?;
    let hi: u16 = hi.parse().map_err(|_| bad())?;
    if lo == 0 || hi < lo {
        return Err(bad());
    }
    Ok((lo..=hi).map(|n| format!("{n}/{proto}")).collect())
}

fn healthcheck(ins: &Instruction) -> Result<Healthcheck, StepError> {
    let rest = ins.rest.trim();
    let (first, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if first.eq_ignore_ascii_case("NONE") {
        return Ok(Healthcheck {
            test: vec!["NONE".into()],
            ..Healthcheck::default()
        });
    }
    let tail = tail.trim();
    let test = match serde_json::from_str::<Vec<String>>(tail) {
        Ok(j) if tail.starts_with('[') => std::iter::once("CMD".to_string()).chain(j).collect(),
        _ => vec!["CMD-SHELL".to_string(), tail.to_string()],
    };
    let dur = |name: &str| -> Result<Option<Duration>, StepError> {
        ins.flag(name)
            .map(|v| {
                go_duration(v)
                    .ok_or_else(|| StepError::Invalid(format!("invalid --{name} duration {v:?}")))
            })
            .transpose()
    };
    let retries = ins
        .flag("retries")
        .map(|v| {
            v.parse::<u32>()
                .map_err(|_| StepError::Invalid(format!("invalid --retries {v:?}")))
        })
        .transpose()?;
    Ok(Healthcheck {
        test,
        interval: dur("interval")?,
        timeout: dur("timeout")?,
        start_period: dur("start-period")?,
        start_interval: dur("start-interval")?,
        retries,
    })
}

/// A Go duration (`1m30s`, `500ms`, `2h`).
pub fn go_duration(s: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * unit;
        rest = &rest[u..];
    }
    Some(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::build::dockerfile::parse;

    fn env(name: &str) -> Option<String> {
        (name == "V").then(|| "1.2".to_string())
    }

    fn apply_all(text: &str) -> ConfigFile {
        let df = parse(text, "Dockerfile").unwrap();
        let mut cfg = ConfigFile::default();
        let mut cmd_set = false;
        for ins in &df.instructions {
            apply(ins, df.escape, &env, &mut cfg, &mut cmd_set).unwrap();
        }
        cfg
    }

    #[test]
    fn config_instructions() {
        let cfg = apply_all(
            "ENV A=1 B=\"two words\" C=${V}\nENV LEGACY some value\nLABEL version=$V \"k 2\"=x\n\
             WORKDIR /app\nWORKDIR sub/../src\nUSER app:app\nEXPOSE 80 53/udp 8000-8001\n\
             VOLUME [\"/data\"]\nVOLUME /logs /cache\nSTOPSIGNAL SIGQUIT\n\
             SHELL [\"/bin/bash\", \"-c\"]\nCMD echo $HOME\n\
             HEALTHCHECK --interval=1m30s --retries=2 CMD [\"true\"]\n",
        );
        let c = &cfg.config;
        assert_eq!(
            c.env,
            vec!["A=1", "B=two words", "C=1.2", "LEGACY=some value"]
        );
        assert_eq!(c.labels["version"], "1.2");
        assert_eq!(c.labels["k 2"], "x");
        assert_eq!(c.working_dir.as_deref(), Some("/app/src"));
        assert_eq!(c.user.as_deref(), Some("app:app"));
        assert_eq!(c.exposed_ports.len(), 4);
        assert!(c.exposed_ports.contains("53/udp") && c.exposed_ports.contains("8001/tcp"));
        assert_eq!(c.volumes.len(), 3);
        assert_eq!(c.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(
            c.cmd,
            Some(vec!["/bin/bash".into(), "-c".into(), "echo $HOME".into()])
        );
        let hc = c.healthcheck.as_ref().unwrap();
        assert_eq!(hc.test, vec!["CMD", "true"]);
        assert_eq!(hc.interval, Some(Duration::from_secs(90)));
        assert_eq!(hc.retries, Some(2));
    }

    #[test]
    fn entrypoint_resets_inherited_cmd() {
        let mut cfg = ConfigFile::default();
        cfg.config.cmd = Some(vec!["sh".into()]);
        let df = parse("ENTRYPOINT [\"/app\"]\n", "Dockerfile").unwrap();
        let mut set = false;
        apply(&df.instructions[0], '\\', &env, &mut cfg, &mut set).unwrap();
        assert_eq!(cfg.config.cmd, None);
        assert_eq!(cfg.config.entrypoint, Some(vec!["/app".into()]));
        assert!(expose("0").is_err() && expose("80/xyz").is_err());
        assert_eq!(go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(go_duration("x"), None);
    }
}
