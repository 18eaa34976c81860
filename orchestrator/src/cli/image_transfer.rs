//! `berth image save|load|pull|push|login|logout|build`: archives, registries and builds. Archives are read
//! and written by the engine, on the same host, so paths are sent absolute. Transfers stream
//! `LAYER: STATUS` lines: on a terminal each layer keeps one line, updated in place; otherwise
//! a line is printed each time a layer changes state.

use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Read, Write};
use std::path::Path;

use anyhow::Context;
use hyper::Method;

use super::image::{BuildArgs, ImageCmd, NONE};
use crate::api::{self, BuildImage, LoadImages, RegistryLogin, SaveImages};
use crate::client::enc;
use crate::client::Client;

/// Runs the transfer commands of `berth image`.
pub async fn run(client: &Client, cmd: ImageCmd) -> anyhow::Result<u8> {
    match cmd {
        ImageCmd::Save {
            output,
            format,
            images,
        } => {
            let path = absolute_new(&output)?;
            let req = SaveImages {
                path,
                format,
                references: images,
            };
            streamed(client, "/images/save", Some(&req)).await
        }
        ImageCmd::Load { input } => {
            let path = std::fs::canonicalize(&input)
                .with_context(|| format!("load: {input} not found"))?;
            let req = LoadImages {
                path: path.display().to_string(),
            };
            streamed(client, "/images/load", Some(&req)).await
        }
        ImageCmd::Pull { image } => {
            streamed(client, &format!("/images/pull?ref={}", enc(&image)), NONE).await
        }
        ImageCmd::Push { image } => {
            streamed(client, &format!("/images/push?ref={}", enc(&image)), NONE).await
        }
        ImageCmd::Login {
            username,
            password_stdin,
            registry,
        } => {
            if !password_stdin {
                anyhow::bail!("login: give the password on stdin with --password-stdin");
            }
            let mut password = String::new();
            std::io::stdin()
                .read_to_string(&mut password)
                .context("login: read password from stdin")?;
            let req = RegistryLogin {
                registry,
                username,
                password: password.trim_end_matches(['\n', '\r']).to_string(),
            };
            client
                .call::<serde_json::Value>(Method::POST, "/images/login", Some(&req))
                .await?;
            println!("Login Succeeded");
            Ok(0)
        }
        ImageCmd::Logout { registry } => {
            let v: serde_json::Value = client
                .call(
                    Method::POST,
                    &format!("/images/logout?registry={}", enc(&registry)),
                    NONE,
                )
                .await?;
            if v["removed"].as_bool() == Some(true) {
                println!("Removing login credentials for {registry}");
            } else {
                println!("Not logged in to {registry}");
            }
            Ok(0)
        }
        ImageCmd::Build(args) => {
            let req = build_request(&args)?;
            streamed(client, "/images/build", Some(&req)).await
        }
        _ => unreachable!("berth image: {cmd:?} is not a transfer command"),
    }
}

/// `KEY=VALUE` build args; `KEY` alone takes the value from the environment (or is left out).
pub fn parse_build_args(items: &[String]) -> BTreeMap<String, String> {
    items
        .iter()
        .filter_map(|a| match a.split_once('=') {
            Some((k, v)) => Some((k.to_string(), v.to_string())),
            None => std::env::var(a).ok().map(|v| (a.clone(), v)),
        })
        .collect()
}

/// The request of `berth image build`: context and Dockerfile made absolute (the engine reads
/// them on this host; `-f` is relative to the working directory, as with Docker).
fn build_request(args: &BuildArgs) -> anyhow::Result<BuildImage> {
    let context = std::fs::canonicalize(&args.context)
        .with_context(|| format!("build: context {} not found", args.context))?;
    let dockerfile = match &args.file {
        Some(f) => Some(
            std::fs::canonicalize(f)
                .with_context(|| format!("build: Dockerfile {f} not found"))?
                .display()
                .to_string(),
        ),
        None => None,
    };
    Ok(BuildImage {
        context: context.display().to_string(),
        dockerfile,
        tags: args.tag.clone(),
        build_args: parse_build_args(&args.build_arg),
        target: args.target.clone(),
        no_cache: args.no_cache,
    })
}

/// The absolute path of a file that may not exist yet (its directory must).
fn absolute_new(file: &str) -> anyhow::Result<String> {
    let p = Path::new(file);
    let name = p
        .file_name()
        .with_context(|| format!("save: {file} is not a file name"))?;
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let dir = std::fs::canonicalize(dir)
        .with_context(|| format!("save: directory {} not found", dir.display()))?;
    Ok(dir.join(name).display().to_string())
}

/// Prints progress lines: per layer in place on a terminal, on state changes otherwise.
struct Printer {
    tty: bool,
    /// Layer id -> (its line's index among those printed, its last state word).
    layers: HashMap<String, (usize, String)>,
    lines: usize,
    partial: Vec<u8>,
}

impl Printer {
    fn text(&mut self, data: &[u8]) {
        self.partial.extend_from_slice(data);
        while let Some(i) = self.partial.iter().position(|&b| b == b'\n') {
            let l: Vec<u8> = self.partial.drain(..=i).collect();
            self.line(String::from_utf8_lossy(&l[..i]).into_owned());
        }
    }

    fn line(&mut self, l: String) {
        let mut out = std::io::stdout().lock();
        let layer = l
            .split_once(": ")
            .filter(|(id, _)| id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()));
        let Some((id, status)) = layer else {
            let _ = writeln!(out, "{l}");
            self.lines += 1;
            return;
        };
        let word = status.split(' ').next().unwrap_or("").to_string();
        match self.layers.get_mut(id) {
            Some((at, last)) if self.tty => {
                let up = self.lines - *at;
                let _ = write!(out, "\x1b[{up}A\r\x1b[2K{l}\x1b[{up}B\r");
                *last = word;
            }
            Some((_, last)) if *last == word => {}
            Some((_, last)) => {
                let _ = writeln!(out, "{l}");
                self.lines += 1;
                *last = word;
            }
            None => {
                let _ = writeln!(out, "{l}");
                self.layers.insert(id.to_string(), (self.lines, word));
                self.lines += 1;
            }
        }
        let _ = out.flush();
    }
}

/// Sends a streamed image operation and returns its exit code.
pub(super) async fn streamed(
    client: &Client,
    path: &str,
    body: Option<&impl serde::Serialize>,
) -> anyhow::Result<u8> {
    let mut p = Printer {
        tty: std::io::stdout().is_terminal(),
        layers: HashMap::new(),
        lines: 0,
        partial: Vec::new(),
    };
    let code = client
        .stream(Method::POST, path, body, |stream, data| {
            if stream == api::STDERR {
                let _ = std::io::stderr().write_all(b"berth: ");
                let _ = std::io::stderr().write_all(data);
            } else {
                p.text(data);
            }
        })
        .await?;
    Ok(code.unwrap_or(1).clamp(0, 255) as u8)
}
