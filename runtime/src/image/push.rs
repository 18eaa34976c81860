//! `push`: uploads an image's layers (in parallel) and config, then its manifest under the
//! tag. Blobs the registry already has are skipped; blobs of an image that came from another
//! repository of the same registry are mounted from there instead of uploaded. Small blobs go
//! in one `PUT`, large ones in `PATCH` chunks.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use tracing::{debug, info, instrument};

use super::digest::sha256_digest;
use super::media;
use super::pull::{Progress, ProgressFn, TransferState};
use super::registry::{header, Body, Client, RegistryOptions};
use super::{auth, ImageError, ImageStore, Reference};

/// One blob to upload.
struct Blob {
    digest: String,
    size: u64,
}

impl ImageStore {
    /// Pushes the local image `reference` (`localhost:5000/a/b:tag`) to its registry and
    /// returns the manifest digest. The reference is then also known as `NAME@DIGEST`.
    #[instrument(skip(self, opts, progress))]
    pub fn push(
        &self,
        reference: &str,
        opts: &RegistryOptions,
        progress: ProgressFn<'_>,
    ) -> Result<String, ImageError> {
        let r = Reference::parse(reference)?;
        let Some(tag) = r.tag().filter(|_| r.digest().is_none()) else {
            return Err(ImageError::Invalid {
                what: format!("reference {reference}"),
                reason: "push needs a tag, not a digest".to_string(),
            });
        };
        let _gc = self.lock_gc(false)?;
        let idx = self.read_index()?;
        let id = idx
            .references
            .get(&r.to_string())
            .cloned()
            .ok_or_else(|| ImageError::NotFound(r.familiar()))?;
        let record = self.read_record(&id)?;
        let doc = self.read_blob(&record.manifest.digest)?;
        let manifest = media::parse_manifest(&doc)?;
        let creds = auth::load(&self.layout, r.domain())?;
        let client = Client::new(r.domain(), r.path(), "pull,push", creds, opts);
        let mount_from = record
            .sources
            .iter()
            .filter_map(|s| s.strip_prefix(&format!("{}/", r.domain())))
            .find(|repo| *repo != r.path())
            .map(str::to_string);
        let layers: Vec<Blob> = manifest
            .layers()
            .iter()
            .map(|l| Blob {
                digest: l.digest().to_string(),
                size: l.size(),
            })
            .collect();
        let uploader = Uploader {
            store: self,
            client: &client,
            mount_from: mount_from.as_deref(),
            chunk_size: opts.chunk_size.max(1),
            progress,
        };
        uploader.upload_all(&layers, opts.parallel)?;
        let config = Blob {
            digest: manifest.config().digest().to_string(),
            size: manifest.config().size(),
        };
        uploader.upload(&config)?;
        let url = client.url(&format!("manifests/{tag}"));
        let step = format!("put manifest {}:{tag}", r.path());
        let resp = client.call(
            "PUT",
            &url,
            &[("content-type", &record.manifest.media_type)],
            Body::Bytes(&doc),
            &step,
        )?;
        if !resp.status().is_success() {
            return Err(client.status_error(&step, resp));
        }
        let digest = sha256_digest(&doc);
        self.add_source(
            &id,
            &format!("{}/{}", r.domain(), r.path()),
            &r.with_digest(&digest),
        )?;
        info!(image = %id, reference = %r, digest = %digest, "pushed image");
        Ok(digest)
    }
}

struct Uploader<'a> {
    store: &'a ImageStore,
    client: &'a Client,
    mount_from: Option<&'a str>,
    chunk_size: u64,
    progress: ProgressFn<'a>,
}

impl Uploader<'_> {
    fn upload_all(&self, blobs: &[Blob], parallel: usize) -> Result<(), ImageError> {
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let first_error: Mutex<Option<ImageError>> = Mutex::new(None);
        std::thread::scope(|s| {
            for _ in 0..parallel.clamp(1, blobs.len().max(1)) {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(blob) = blobs.get(i).filter(|_| !stop.load(Ordering::SeqCst)) else {
                        break;
                    };
                    if let Err(e) = self.upload(blob) {
                        stop.store(true, Ordering::SeqCst);
                        first_error
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .get_or_insert(e);
                        break;
                    }
                });
            }
        });
        match first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn report(&self, blob: &Blob, done: u64, state: TransferState) {
        (self.progress)(&Progress {
            digest: blob.digest.clone(),
            total: blob.size,
            done,
            state,
        });
    }

    /// Uploads one blob unless the registry has it or can mount it.
    fn upload(&self, blob: &Blob) -> Result<(), ImageError> {
        let c = self.client;
        let step = format!("check blob {}", blob.digest);
        let head = c.call(
            "HEAD",
            &c.url(&format!("blobs/{}", blob.digest)),
            &[],
            Body::Empty,
            &step,
        )?;
        if head.status().is_success() {
            self.report(blob, blob.size, TransferState::Exists);
            return Ok(());
        }
        let start_url = match self.mount_from {
            Some(from) => c.url(&format!("blobs/uploads/?mount={}&from={from}", blob.digest)),
            None => c.url("blobs/uploads/"),
        };
        let step = format!("start upload of {}", blob.digest);
        let resp = c.call("POST", &start_url, &[], Body::Empty, &step)?;
        let status = resp.status().as_u16();
        if status == 201 && self.mount_from.is_some() {
            debug!(blob = %blob.digest, from = ?self.mount_from, "blob mounted");
            self.report(blob, blob.size, TransferState::Mounted);
            return Ok(());
        }
        if status != 202 {
            return Err(c.status_error(&step, resp));
        }
        let location = header(&resp, "location")
            .ok_or_else(|| c.error(&step, "no upload location".to_string()))?;
        self.report(blob, 0, TransferState::Transferring);
        let path = self.store.layout.blob(&blob.digest)?;
        let location = if blob.size > self.chunk_size {
            self.send_chunks(blob, &path, c.absolute(&location))?
        } else {
            c.absolute(&location)
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{sep}digest={}", blob.digest);
        let step = format!("upload blob {}", blob.digest);
        let headers = [("content-type", "application/octet-stream")];
        let body = if blob.size > self.chunk_size {
            Body::Empty
        } else {
            Body::File(&path)
        };
        let resp = c.call("PUT", &url, &headers, body, &step)?;
        if !resp.status().is_success() {
            return Err(c.status_error(&step, resp));
        }
        self.report(blob, blob.size, TransferState::Done);
        Ok(())
    }

    /// Sends the blob in `PATCH` chunks; returns the location to finish the upload at.
    fn send_chunks(
        &self,
        blob: &Blob,
        path: &std::path::Path,
        mut location: String,
    ) -> Result<String, ImageError> {
        let c = self.client;
        let mut file = File::open(path).map_err(ImageError::io("open blob", path))?;
        let mut buf = Vec::new();
        let mut offset = 0u64;
        while offset < blob.size {
            let len = self.chunk_size.min(blob.size - offset);
            buf.clear();
            file.seek(SeekFrom::Start(offset))
                .map_err(ImageError::io("read blob", path))?;
            (&mut file)
                .take(len)
                .read_to_end(&mut buf)
                .map_err(ImageError::io("read blob", path))?;
            if buf.len() as u64 != len {
                return Err(ImageError::SizeMismatch {
                    what: format!("blob {}", blob.digest),
                    expected: blob.size,
                    actual: offset + buf.len() as u64,
                });
            }
            let range = format!("{}-{}", offset, offset + len - 1);
            let step = format!("upload chunk {range} of {}", blob.digest);
            let headers = [
                ("content-type", "application/octet-stream"),
                ("content-range", range.as_str()),
            ];
            let resp = c.call("PATCH", &location, &headers, Body::Bytes(&buf), &step)?;
            if resp.status().as_u16() != 202 {
                return Err(c.status_error(&step, resp));
            }
            if let Some(next) = header(&resp, "location") {
                location = c.absolute(&next);
            }
            offset += len;
            self.report(blob, offset, TransferState::Transferring);
        }
        Ok(location)
    }
}

impl ImageStore {
    /// Checks `username`/`password` against `registry` (`localhost:5000`, `docker.io`) and
    /// stores them (mode 0600) for later pulls and pushes.
    #[instrument(skip(self, password, opts))]
    pub fn login(
        &self,
        registry: &str,
        username: &str,
        password: &str,
        opts: &RegistryOptions,
    ) -> Result<(), ImageError> {
        let creds = auth::Credentials {
            username: username.to_string(),
            password: password.to_string(),
        };
        let client = Client::new(registry, "", "", Some(creds.clone()), opts);
        client.ping()?;
        auth::store(&self.layout, registry, Some(&creds))?;
        info!(registry, username, "logged in");
        Ok(())
    }

    /// Forgets the credentials for `registry`; returns whether there were any.
    pub fn logout(&self, registry: &str) -> Result<bool, ImageError> {
        auth::store(&self.layout, registry, None)
    }
}
