//! Servers the registry tests put in front of or beside a real registry: a token service for
//! the bearer flow (ES256 JWTs signed by openssl) and a TCP proxy that breaks one download.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::run;

/// A token service for the registry's `auth: token` mode: signs ES256 JWTs with a key and
/// self-signed certificate made by openssl. `tok:secret` gets what it asks for; anonymous
/// callers get `pull` only.
pub struct TokenServer {
    port: u16,
    dir: PathBuf,
    pub seen: Arc<Mutex<Vec<String>>>,
}

pub const TOKEN_USER: &str = "tok";
pub const TOKEN_PASS: &str = "secret";

impl TokenServer {
    pub fn start(dir: &Path) -> TokenServer {
        let key = dir.join("key.pem");
        let cert = dir.join("cert.pem");
        run(Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=berth-test-token",
                "-keyout",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&cert));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (dir2, seen2) = (dir.to_path_buf(), seen.clone());
        // The thread ends with the test process; it only ever serves loopback requests.
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                serve_token(conn, &dir2, &seen2);
            }
        });
        TokenServer {
            port,
            dir: dir.to_path_buf(),
            seen,
        }
    }

    pub fn auth_yaml(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: berth-test\n    issuer: berth-test-issuer\n    rootcertbundle: {}\n",
            self.port,
            self.dir.join("cert.pem").display()
        )
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

fn b64url(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// An ECDSA DER signature as JOSE's 64-byte r || s.
fn der_to_jose(der: &[u8]) -> Vec<u8> {
    let mut i = if der[1] & 0x80 != 0 {
        2 + (der[1] & 0x7f) as usize
    } else {
        2
    };
    let mut out = Vec::new();
    for _ in 0..2 {
        assert_eq!(der[i], 2);
        let len = der[i + 1] as usize;
        let mut int = &der[i + 2..i + 2 + len];
        while int.len() > 32 && int[0] == 0 {
            int = &int[1..];
        }
        out.extend(std::iter::repeat_n(0u8, 32 - int.len()));
        out.extend_from_slice(int);
        i += 2 + len;
    }
    out
}

fn serve_token(mut conn: TcpStream, dir: &Path, seen: &Mutex<Vec<String>>) {
    use base64::Engine as _;
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut request_line = String::new();
    reader.read_line(&mut request_line).unwrap();
    let mut authorization = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("authorization") {
                authorization = Some(v.trim().to_string());
            }
        }
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("");
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let scopes: Vec<String> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| *k == "scope")
        .map(|(_, v)| percent_decode(v))
        .collect();
    let good = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{TOKEN_USER}:{TOKEN_PASS}"))
    );
    let user = match authorization.as_deref() {
        None => None,
        Some(a) if a == good => Some(TOKEN_USER),
        Some(_) => {
            let _ = conn.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            return;
        }
    };
    seen.lock()
        .unwrap()
        .push(format!("{}:{}", user.unwrap_or("-"), scopes.join(" ")));
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .filter_map(|s| {
            let mut parts = s.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            let actions: Vec<&str> = actions
                .split(',')
                .filter(|a| user.is_some() || *a == "pull")
                .collect();
            Some(serde_json::json!({"type": kind, "name": name, "actions": actions}))
        })
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let cert_der = run(Command::new("sh").arg("-c").arg(format!(
        "openssl x509 -in {} -outform DER | base64 -w0",
        dir.join("cert.pem").display()
    )));
    let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [cert_der.trim()]});
    let claims = serde_json::json!({
        "iss": "berth-test-issuer", "sub": user.unwrap_or(""), "aud": "berth-test",
        "exp": now + 300, "nbf": now - 10, "iat": now - 10, "jti": format!("{}", rand::random::<u64>()),
        "access": access,
    });
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let mut sign = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(dir.join("key.pem"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    sign.stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let der = sign.wait_with_output().unwrap().stdout;
    let jwt = format!("{input}.{}", b64url(&der_to_jose(&der)));
    let body = serde_json::json!({"token": jwt, "expires_in": 300}).to_string();
    let _ = write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// A loopback TCP proxy that cuts the first connection that carries more than `cut` bytes
/// from the server, once.
pub struct FlakyProxy {
    pub port: u16,
    pub cut_done: Arc<AtomicBool>,
}

impl FlakyProxy {
    pub fn start(upstream: u16, cut: u64) -> FlakyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut_done = Arc::new(AtomicBool::new(false));
        let flag = cut_done.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (mut c_read, mut s_write) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c_read, &mut s_write);
                });
                let flag = flag.clone();
                std::thread::spawn(move || {
                    let (mut server, mut client) = (server, client);
                    let mut buf = [0u8; 16384];
                    let mut sent = 0u64;
                    loop {
                        let n = match std::io::Read::read(&mut server, &mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if sent + n as u64 > cut && !flag.swap(true, Ordering::SeqCst) {
                            let keep = (cut - sent.min(cut)) as usize;
                            let _ = client.write_all(&buf[..keep.min(n)]);
                            let _ = client.shutdown(std::net::Shutdown::Both);
                            let _ = server.shutdown(std::net::Shutdown::Both);
                            break;
                        }
                        if client.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        sent += n as u64;
                    }
                    let _ = client.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        FlakyProxy { port, cut_done }
    }
}
