//! Serving HTTPS with a certificate that is reloaded when its files change.
//!
//! The certificate chain and the private key are PEM files (for instance a
//! cert-manager Secret mounted as a volume). A background task reads them
//! every [`RELOAD_INTERVAL`]; when their contents change and the new pair is
//! valid (parses, and the key matches the certificate), new handshakes get
//! the new certificate. A bad new pair keeps the old certificate and logs an
//! error (once per change of the files).
//!
//! TLS handshakes run in their own tasks with a deadline, so a slow client
//! cannot hold up the others; the HTTP side is `axum::serve` over the
//! established connections (HTTP/1.1, with graceful shutdown).

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How often the certificate files are read again.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(5);
/// How long a client may take to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// An error of the TLS layer.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file holds no usable PEM data of the kind expected.
    #[error("{path}: {detail}")]
    Pem {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// The key cannot be used, or does not match the certificate.
    #[error("{key} does not fit {cert}: {source}")]
    Key {
        /// The key file.
        key: String,
        /// The certificate file.
        cert: String,
        /// What rustls found.
        #[source]
        source: rustls::Error,
    },
}

impl From<TlsError> for io::Error {
    fn from(error: TlsError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, error)
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Read a certificate chain and its key from PEM files, checking that they
/// belong together.
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let (cert_pem, key_pem) = (read(cert)?, read(key)?);
    certified_key(cert, &cert_pem, key, &key_pem)
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn certified_key(
    cert: &Path,
    cert_pem: &[u8],
    key: &Path,
    key_pem: &[u8],
) -> Result<CertifiedKey, TlsError> {
    let pem = |path: &Path, detail: String| TlsError::Pem {
        path: path.display().to_string(),
        detail,
    };
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem(cert, format!("not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(pem(cert, "holds no CERTIFICATE block".into()));
    }
    let private = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| pem(key, format!("holds no usable PEM private key: {e}")))?;
    CertifiedKey::from_der(chain, private, &provider()).map_err(|source| TlsError::Key {
        key: key.display().to_string(),
        cert: cert.display().to_string(),
        source,
    })
}

/// The certificate in use, swapped when its files change.
pub struct ReloadingCert {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    /// The file contents last looked at (loaded or rejected).
    seen: RwLock<(Vec<u8>, Vec<u8>)>,
    /// How many times the watcher has read the files.
    looks: tokio::sync::watch::Sender<u64>,
}

impl fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl ReloadingCert {
    /// Load the pair; failing here is fatal (there is nothing to serve).
    pub fn open(cert: PathBuf, key: PathBuf) -> Result<ReloadingCert, TlsError> {
        let (cert_pem, key_pem) = (read(&cert)?, read(&key)?);
        let loaded = certified_key(&cert, &cert_pem, &key, &key_pem)?;
        Ok(ReloadingCert {
            cert,
            key,
            current: RwLock::new(Arc::new(loaded)),
            seen: RwLock::new((cert_pem, key_pem)),
            looks: tokio::sync::watch::Sender::new(0),
        })
    }

    /// Read the files again; swap the certificate if they changed and are
    /// valid. Returns whether a new certificate is in use.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let (cert_pem, key_pem) = (read(&self.cert)?, read(&self.key)?);
        {
            let seen = self.seen.read().unwrap_or_else(|e| e.into_inner());
            if seen.0 == cert_pem && seen.1 == key_pem {
                return Ok(false);
            }
        }
        let loaded = certified_key(&self.cert, &cert_pem, &self.key, &key_pem);
        *self.seen.write().unwrap_or_else(|e| e.into_inner()) = (cert_pem, key_pem);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(loaded?);
        Ok(true)
    }

    /// The certificate in use.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many times the watcher has read the files (whatever it found):
    /// a sign that it looked, for tests and diagnostics.
    pub fn looks(&self) -> tokio::sync::watch::Receiver<u64> {
        self.looks.subscribe()
    }

    /// Reload every `interval` until the returned task is aborted (it also
    /// stops when `self` is only held by the task).
    pub fn watch(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(this) = weak.upgrade() else { break };
                let reloading = this.clone();
                let result = tokio::task::spawn_blocking(move || reloading.reload()).await;
                this.looks.send_modify(|n| *n += 1);
                match result {
                    Ok(Ok(true)) => tracing::info!("TLS certificate reloaded"),
                    Ok(Ok(false)) => {}
                    Ok(Err(error)) => tracing::error!(
                        %error,
                        "the new TLS certificate is not usable; the previous one stays in use"
                    ),
                    Err(join) => tracing::error!(error = %join, "the certificate reload failed"),
                }
            }
        })
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// A rustls server configuration that serves `cert`'s current certificate
/// over HTTP/1.1.
pub fn server_config(cert: Arc<ReloadingCert>) -> io::Result<ServerConfig> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Accepted TCP connections after their TLS handshake, for `axum::serve`.
pub struct TlsListener {
    local: SocketAddr,
    incoming: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl TlsListener {
    /// Accept on `listener`, handshaking each connection in its own task.
    pub fn new(listener: TcpListener, config: ServerConfig) -> io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let (sender, incoming) = mpsc::channel(64);
        let accept = tokio::spawn(async move {
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: wait, retry.
                        tracing::warn!(%error, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let (acceptor, sender) = (acceptor.clone(), sender.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = sender.send((tls, peer)).await;
                        }
                        Ok(Err(error)) => {
                            tracing::debug!(%peer, %error, "TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            local,
            incoming,
            accept,
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(accepted) => accepted,
            // The accept task only ends when aborted, with the listener.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// Serve `router` over HTTPS on `listener` until `shutdown` resolves, with
/// the certificate chain and key from PEM files, reloaded every
/// [`RELOAD_INTERVAL`] when they change. Fails at once if the files are
/// unusable at start.
pub async fn serve_tls(
    listener: TcpListener,
    router: Router,
    cert: PathBuf,
    key: PathBuf,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_tls_every(listener, router, cert, key, RELOAD_INTERVAL, shutdown).await
}

/// [`serve_tls`] with the files read every `interval`.
pub async fn serve_tls_every(
    listener: TcpListener,
    router: Router,
    cert: PathBuf,
    key: PathBuf,
    interval: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let cert = Arc::new(ReloadingCert::open(cert, key)?);
    let watcher = cert.watch(interval);
    let listener = TlsListener::new(listener, server_config(cert)?)?;
    // Tapped, so that handlers see each client's address as over plain
    // HTTP (`ConnectInfo<SocketAddr>`).
    let served = axum::serve(
        axum::serve::ListenerExt::tap_io(listener, |_| {}),
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    watcher.abort();
    served
}

#[cfg(test)]
mod tests {
    //! Reloading on tokio's paused clock: the runtime jumps to the watcher's
    //! next tick whenever every task waits, so no test sleeps for real, and
    //! each check waits for the watcher to have looked before it asserts.

    use super::*;

    /// A new self-signed pair, as PEM certificate and key.
    fn pair() -> (String, String) {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        (made.cert.pem(), made.signing_key.serialize_pem())
    }

    struct Files {
        _dir: tempfile::TempDir,
        cert: PathBuf,
        key: PathBuf,
    }

    impl Files {
        fn with((cert_pem, key_pem): &(String, String)) -> Files {
            let dir = tempfile::tempdir().unwrap();
            let files = Files {
                cert: dir.path().join("tls.crt"),
                key: dir.path().join("tls.key"),
                _dir: dir,
            };
            files.write(&(cert_pem.clone(), key_pem.clone()));
            files
        }

        fn write(&self, (cert_pem, key_pem): &(String, String)) {
            std::fs::write(&self.cert, cert_pem).unwrap();
            std::fs::write(&self.key, key_pem).unwrap();
        }
    }

    fn der(cert_pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap()
    }

    /// Wait (on the paused clock) until the watcher has read the files
    /// `looks` times in all.
    async fn looked(cert: &ReloadingCert, looks: u64) {
        let mut seen = cert.looks();
        tokio::time::timeout(Duration::from_secs(600), seen.wait_for(|n| *n >= looks))
            .await
            .expect("the watcher stopped looking")
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn new_files_are_served_from_the_next_tick() {
        let (first, second) = (pair(), pair());
        let files = Files::with(&first);
        let cert = Arc::new(ReloadingCert::open(files.cert.clone(), files.key.clone()).unwrap());
        let started = tokio::time::Instant::now();
        let _watcher = cert.watch(Duration::from_secs(5));
        files.write(&second);
        assert_eq!(cert.current().cert[0], der(&first.0));

        looked(&cert, 1).await;
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        assert_eq!(cert.current().cert[0], der(&second.0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_bad_pair_keeps_the_certificate_in_use_until_a_good_one_comes() {
        let (first, third) = (pair(), pair());
        let files = Files::with(&first);
        let cert = Arc::new(ReloadingCert::open(files.cert.clone(), files.key.clone()).unwrap());
        let _watcher = cert.watch(Duration::from_secs(5));

        // A key that does not fit the certificate, then no PEM at all.
        files.write(&(first.0.clone(), pair().1));
        looked(&cert, 1).await;
        assert_eq!(cert.current().cert[0], der(&first.0));
        files.write(&("not PEM".to_owned(), first.1.clone()));
        looked(&cert, 2).await;
        assert_eq!(cert.current().cert[0], der(&first.0));

        files.write(&third);
        looked(&cert, 3).await;
        assert_eq!(cert.current().cert[0], der(&third.0));
    }

    #[tokio::test(start_paused = true)]
    async fn unchanged_files_are_looked_at_every_interval_and_change_nothing() {
        let first = pair();
        let files = Files::with(&first);
        let cert = Arc::new(ReloadingCert::open(files.cert.clone(), files.key.clone()).unwrap());
        let before = cert.current();
        let started = tokio::time::Instant::now();
        let _watcher = cert.watch(Duration::from_secs(5));
        looked(&cert, 3).await;
        assert_eq!(started.elapsed(), Duration::from_secs(15));
        assert!(
            Arc::ptr_eq(&before, &cert.current()),
            "the same files were loaded again"
        );
    }
}
