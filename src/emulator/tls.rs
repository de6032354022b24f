//! HTTPS for the emulator: a certificate and key given as PEM files (`--cert`/`--key`), or a
//! self-signed certificate for `localhost`, `127.0.0.1`, `::1` and `devstoreaccount1.file.localhost`
//! generated on first use (`--https`) and kept in `DATA/tls/` so clients that trust it keep working
//! across restarts. TLS is rustls with the aws-lc-rs provider (what reqwest already builds).

use anyhow::Context as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How the emulator serves HTTPS (plain HTTP when nothing is given).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsConfig {
    /// Serve HTTPS with this certificate chain (PEM); needs --key.
    #[arg(long, requires = "key", value_name = "PEM")]
    pub cert: Option<PathBuf>,
    /// The private key of --cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, requires = "cert", value_name = "PEM")]
    pub key: Option<PathBuf>,
    /// Serve HTTPS with a self-signed certificate for localhost and 127.0.0.1, made on first use and
    /// kept as DATA/tls/cert.pem (its path is printed on stderr; clients must trust it).
    #[arg(long, conflicts_with = "cert")]
    pub https: bool,
}

/// The server side of TLS and the certificate clients should trust.
pub struct Tls {
    pub server: Arc<rustls::ServerConfig>,
    /// The certificate file (given or generated).
    pub cert_path: PathBuf,
    /// True when the emulator made the certificate itself.
    pub generated: bool,
}

/// The TLS settings `config` asks for, or `None` for plain HTTP. `data` is the emulator's data
/// directory (where a generated certificate is kept).
pub fn load(config: &TlsConfig, data: &Path) -> anyhow::Result<Option<Tls>> {
    let (cert_path, key_path, generated) = match (&config.cert, &config.key, config.https) {
        (Some(c), Some(k), _) => (c.clone(), k.clone(), false),
        (None, None, true) => {
            let (c, k) = self_signed(&data.join("tls"))?;
            (c, k, true)
        }
        (None, None, false) => return Ok(None),
        _ => anyhow::bail!("--cert and --key go together"),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| anyhow::anyhow!("cannot read certificates from {}: {e}", cert_path.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{} holds no PEM certificate", cert_path.display());
    }
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| anyhow::anyhow!("cannot read a private key from {}: {e}", key_path.display()))?;
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .with_context(|| {
            format!("{} and {} do not make a usable certificate", cert_path.display(), key_path.display())
        })?;
    Ok(Some(Tls { server: Arc::new(server), cert_path, generated }))
}

/// The self-signed certificate and key in `dir` (`cert.pem`, `key.pem`), made if missing.
fn self_signed(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let names = ["localhost", "127.0.0.1", "::1", "devstoreaccount1.file.localhost"].map(String::from).to_vec();
    let made = rcgen::generate_simple_self_signed(names).context("cannot generate a self-signed certificate")?;
    write_private(&key_path, made.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(&cert_path, made.cert.pem()).with_context(|| format!("cannot write {}", cert_path.display()))?;
    Ok((cert_path, key_path))
}

/// Writes a file only its owner may read.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(bytes).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
