//! `pull`: a manifest (through an index or manifest list, choosing linux and the host's
//! architecture), its config and its layers, downloaded in parallel and unpacked while they
//! download. Layers already in the store are not downloaded again; every blob is verified
//! against its digest, and nothing of a failed pull is left in the store.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use tracing::{info, instrument};

use super::config::ConfigFile;
use super::digest::sha256_digest;
use super::layer::Expect;
use super::media;
use super::registry::{header, Body, Client, RegistryOptions};
use super::{auth, Image, ImageError, ImageStore, Reference};

/// Where one blob of a pull or push stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferState {
    /// Already where it needs to be: nothing to transfer.
    Exists,
    /// Mounted from another repository of the same registry (push).
    Mounted,
    /// Bytes are moving.
    Transferring,
    /// Transferred and verified.
    Done,
}

/// Progress of one blob, reported to the caller's callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub digest: String,
    /// Bytes in the blob (0 when unknown).
    pub total: u64,
    /// Bytes transferred so far.
    pub done: u64,
    pub state: TransferState,
}

/// The progress callback type: called from several threads.
pub type ProgressFn<'a> = &'a (dyn Fn(&Progress) + Sync);

/// Reports progress every `STEP` bytes while reading.
struct Counted<'a, R> {
    inner: R,
    p: Progress,
    next: u64,
    report: ProgressFn<'a>,
}

const STEP: u64 = 1 << 20;

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.p.done += n as u64;
        if self.p.done >= self.next {
            self.next = self.p.done + STEP;
            (self.report)(&self.p);
        }
        Ok(n)
    }
}

/// One layer to fetch.
struct Job {
    digest: String,
    size: u64,
    diff_id: String,
}

impl ImageStore {
    /// Pulls `reference` (`busybox`, `localhost:5000/a/b:tag`, `name@sha256:...`) from its
    /// registry, using stored credentials for it if any.
    #[instrument(skip(self, opts, progress))]
    pub fn pull(
        &self,
        reference: &str,
        opts: &RegistryOptions,
        progress: ProgressFn<'_>,
    ) -> Result<Image, ImageError> {
        let r = Reference::parse(reference)?;
        let creds = auth::load(&self.layout, r.domain())?;
        let client = Client::new(r.domain(), r.path(), "pull", creds, opts);
        let _gc = self.lock_gc(false)?;
        let target = r.digest().or(r.tag()).unwrap_or("latest");
        let (mut doc, mut mt) = fetch_manifest(&client, target, r.digest())?;
        let top_digest = sha256_digest(&doc);
        if media::is_index(&mt) {
            let index = media::parse_index(&doc)?;
            let chosen = media::pick_platform(&index)?.digest().to_string();
            (doc, mt) = fetch_manifest(&client, &chosen, Some(&chosen))?;
        }
        if !media::is_manifest(&mt) {
            return Err(ImageError::Unsupported {
                what: "manifest media type",
                value: mt,
            });
        }
        let manifest = media::parse_manifest(&doc)?;
        let config_digest = manifest.config().digest().to_string();
        let config = self.fetch_config(&client, &config_digest, manifest.config().size())?;
        let cfg: ConfigFile =
            serde_json::from_slice(&config).map_err(|source| ImageError::Json {
                what: format!("image config {config_digest}"),
                source,
            })?;
        if cfg.rootfs.diff_ids.len() != manifest.layers().len() {
            return Err(ImageError::Invalid {
                what: format!("image {reference}"),
                reason: "the manifest and the config disagree on the number of layers".to_string(),
            });
        }
        let jobs: Vec<Job> = manifest
            .layers()
            .iter()
            .zip(&cfg.rootfs.diff_ids)
            .map(|(l, diff_id)| Job {
                digest: l.digest().to_string(),
                size: l.size(),
                diff_id: diff_id.clone(),
            })
            .collect();
        self.fetch_layers(&client, &jobs, opts.parallel, progress)?;
        // The digest the tag points to (an index's, for a multi-platform image) and the
        // platform manifest's both name the image.
        let manifest_digest = sha256_digest(&doc);
        let mut refs = vec![r.with_digest(&top_digest)];
        if manifest_digest != top_digest {
            refs.push(r.with_digest(&manifest_digest));
        }
        if r.digest().is_none() {
            refs.push(r.clone());
        }
        let source = format!("{}/{}", r.domain(), r.path());
        let id = self.commit(&config, &doc, &mt, &refs, Some(&source))?;
        info!(image = %id, reference = %r, digest = %manifest_digest, "pulled image");
        self.get(&id)
    }

    fn fetch_config(
        &self,
        client: &Client,
        digest: &str,
        size: u64,
    ) -> Result<Vec<u8>, ImageError> {
        if let Ok(data) = self.read_blob(digest) {
            return Ok(data);
        }
        let url = client.url(&format!("blobs/{digest}"));
        let (data, _) = client.get_document(&url, "*/*", &format!("get config {digest}"))?;
        verify_doc(&data, digest, Some(size), &format!("image config {digest}"))?;
        Ok(data)
    }

    /// Downloads and unpacks the layers, `parallel` at a time; the first error stops the rest.
    fn fetch_layers(
        &self,
        client: &Client,
        jobs: &[Job],
        parallel: usize,
        progress: ProgressFn<'_>,
    ) -> Result<(), ImageError> {
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let first_error: Mutex<Option<ImageError>> = Mutex::new(None);
        std::thread::scope(|s| {
            for _ in 0..parallel.clamp(1, jobs.len().max(1)) {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(job) = jobs.get(i).filter(|_| !stop.load(Ordering::SeqCst)) else {
                        break;
                    };
                    if let Err(e) = self.fetch_layer(client, job, progress) {
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

    fn fetch_layer(
        &self,
        client: &Client,
        job: &Job,
        progress: ProgressFn<'_>,
    ) -> Result<(), ImageError> {
        let mut p = Progress {
            digest: job.digest.clone(),
            total: job.size,
            done: 0,
            state: TransferState::Exists,
        };
        if self.has_layer_blob(&job.diff_id, &job.digest) {
            progress(&p);
            return Ok(());
        }
        p.state = TransferState::Transferring;
        progress(&p);
        let reader = Counted {
            inner: client.blob_reader(&job.digest),
            p: p.clone(),
            next: STEP,
            report: progress,
        };
        let expect = Expect {
            digest: Some(&job.digest),
            size: Some(job.size),
            diff_id: Some(&job.diff_id),
        };
        self.store_layer(reader, expect, &format!("layer {}", job.digest))?;
        p.done = job.size;
        p.state = TransferState::Done;
        progress(&p);
        Ok(())
    }
}

/// GETs manifest `reference` (tag or digest), verifying it against `expect` and the
/// registry's `Docker-Content-Digest`. Returns the document and its media type.
pub(super) fn fetch_manifest(
    client: &Client,
    reference: &str,
    expect: Option<&str>,
) -> Result<(Vec<u8>, String), ImageError> {
    let url = client.url(&format!("manifests/{reference}"));
    let step = format!("get manifest {}:{reference}", client.repo);
    let mut resp = client.call(
        "GET",
        &url,
        &[("accept", &media::manifest_accept())],
        Body::Empty,
        &step,
    )?;
    if !resp.status().is_success() {
        return Err(client.status_error(&step, resp));
    }
    let content_type = header(&resp, "content-type").unwrap_or_default();
    let announced = header(&resp, "docker-content-digest");
    let doc = resp
        .body_mut()
        .with_config()
        .limit(8 << 20)
        .read_to_vec()
        .map_err(|e| client.error(&step, e.to_string()))?;
    let what = format!("manifest {}:{reference}", client.repo);
    for want in [expect.map(str::to_string), announced]
        .into_iter()
        .flatten()
    {
        if want.starts_with("sha256:") {
            verify_doc(&doc, &want, None, &what)?;
        }
    }
    let mt = media::sniff(&doc, &content_type);
    Ok((doc, mt))
}

fn verify_doc(data: &[u8], digest: &str, size: Option<u64>, what: &str) -> Result<(), ImageError> {
    let got = sha256_digest(data);
    if got != digest {
        return Err(ImageError::DigestMismatch {
            what: what.to_string(),
            expected: digest.to_string(),
            actual: got,
        });
    }
    if let Some(s) = size.filter(|&s| s != data.len() as u64) {
        return Err(ImageError::SizeMismatch {
            what: what.to_string(),
            expected: s,
            actual: data.len() as u64,
        });
    }
    Ok(())
}
