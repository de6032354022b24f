//! Where a repository lives: a repository location (`--repo`, `AFB_REPO`) turned into an object store.
//!
//! Every command that opens a repository, the content repository and the Parquet node index alike, goes
//! through [`Location::parse`] and [`Location::open`]. Two kinds of location:
//!
//! - **A local directory** (the embedded default): a path, or a `file://` URL (`file:///srv/afb`). The
//!   directory is created if missing.
//! - **Azure Blob**: `az://CONTAINER[/PREFIX]`, every object key under `PREFIX/` in container
//!   `CONTAINER`. The account comes from a connection string in `AFB_REPO_CONNECTION_STRING`, else in
//!   `AZURE_STORAGE_CONNECTION_STRING`; without either, from object_store's standard `AZURE_*` variables
//!   (`AZURE_STORAGE_ACCOUNT_NAME` with `AZURE_STORAGE_ACCOUNT_KEY`, a SAS, or workload / managed
//!   identity). `UseDevelopmentStorage=true` or a `BlobEndpoint=http://HOST:PORT/ACCOUNT` names Azurite
//!   (plain HTTP is allowed for `http:` endpoints only). The container must exist;
//!   [`Location::create_container`] creates it where the credential is an account key or SAS.
//!   (The endpoint may be Azurite's path-style `http://127.0.0.1:PORT/devstoreaccount1`.)
//!
//! Commits stay atomic on Blob: manifests are created with `PutMode::Create`, which object_store sends
//! as `Put Blob` with `If-None-Match: *`, so of two writers of one key exactly one succeeds (the other
//! gets 409 `BlobAlreadyExists`, `object_store::Error::AlreadyExists`). `tests/it/repository_blob.rs` checks
//! this against Azurite.

use std::fmt;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use std::ops::Range;

use anyhow::{Context, bail};
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ClientOptions, RetryConfig};
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, RenameOptions,
};

use crate::azure::credential::DEV_ACCOUNT_NAME;

/// The repository's own connection string; it wins over `AZURE_STORAGE_CONNECTION_STRING`, which is
/// also the Azure Files source's variable.
pub const CONNECTION_STRING_VAR: &str = "AFB_REPO_CONNECTION_STRING";
/// The standard variable, used for the repository when [`CONNECTION_STRING_VAR`] is not set.
pub const STANDARD_CONNECTION_STRING_VAR: &str = "AZURE_STORAGE_CONNECTION_STRING";

/// Local directory for the embedded control area of a Blob repository (see [`Location::control_root`]).
pub const CONTROL_DIR_VAR: &str = "AFB_CONTROL_DIR";

/// The well-known key of Azurite's development account `devstoreaccount1` (public; it protects nothing).
/// afb's own Files emulator accepts the same key, so one development connection string serves both.
pub const AZURITE_ACCOUNT_KEY: &str = crate::azure::credential::DEV_ACCOUNT_KEY;

/// Blob endpoint of Azurite's default port, for `UseDevelopmentStorage=true`.
const DEV_BLOB_ENDPOINT: &str = "http://127.0.0.1:10000/devstoreaccount1";
/// Per-request timeout. Packs are uploaded in one `Put Blob`; 300 s covers a 64 MiB pack at 220 KB/s.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// A parsed repository location. `Display` gives the canonical form (never a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local directory.
    Local(PathBuf),
    /// Keys under `prefix` (empty: the container's root) in an Azure Blob container.
    AzureBlob { container: String, prefix: String },
}

impl Location {
    /// Parse a location. Errors name the location and what is wrong with it, in one line.
    pub fn parse(location: &str) -> anyhow::Result<Self> {
        let bad = |why: &str| anyhow::anyhow!("repository location {location:?}: {why}");
        if location.trim().is_empty() {
            return Err(bad("empty (pass --repo or set AFB_REPO)"));
        }
        let Some((scheme, rest)) = location.split_once("://") else {
            return Ok(Location::Local(PathBuf::from(location)));
        };
        match scheme {
            "file" => {
                if !rest.starts_with('/') {
                    return Err(bad("a file:// URL needs an absolute path (file:///DIR)"));
                }
                Ok(Location::Local(PathBuf::from(rest)))
            }
            "az" => {
                let (container, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                check_container(container).map_err(|why| bad(&why))?;
                let prefix = prefix.trim_end_matches('/');
                if !prefix.is_empty() {
                    Path::parse(prefix).map_err(|_| {
                        bad("the prefix after the container must be /-separated names without empty, . or .. parts")
                    })?;
                }
                Ok(Location::AzureBlob { container: container.to_string(), prefix: prefix.to_string() })
            }
            other => Err(bad(&format!(
                "unsupported scheme {other}:// (use a directory, file:///DIR or az://CONTAINER/PREFIX)"
            ))),
        }
    }

    /// The location of `name` inside this one.
    pub fn child(&self, name: &str) -> Location {
        match self {
            Location::Local(dir) => Location::Local(dir.join(name)),
            Location::AzureBlob { container, prefix } => {
                let prefix = if prefix.is_empty() { name.to_string() } else { format!("{prefix}/{name}") };
                Location::AzureBlob { container: container.clone(), prefix }
            }
        }
    }

    /// The directory of a local repository; `None` for object storage.
    pub fn local_dir(&self) -> Option<&FsPath> {
        match self {
            Location::Local(dir) => Some(dir),
            Location::AzureBlob { .. } => None,
        }
    }

    /// The local directory whose `.afb/` holds the embedded control area (`afb serve`'s API tokens and
    /// share settings): a local repository's own directory; for Blob, the directory in `AFB_CONTROL_DIR`
    /// (the control area holds secrets and is rewritten in place, so it is not kept in the container).
    pub fn control_root(&self) -> anyhow::Result<PathBuf> {
        match self {
            Location::Local(dir) => Ok(dir.clone()),
            Location::AzureBlob { .. } => match std::env::var_os(CONTROL_DIR_VAR) {
                Some(d) if !d.is_empty() => Ok(PathBuf::from(d)),
                _ => bail!(
                    "repository {self}: set {CONTROL_DIR_VAR} to a local directory for the control area (API tokens, share settings)"
                ),
            },
        }
    }

    /// Open the store: creates a local directory if missing; for Blob, builds the client from the
    /// environment (no request is sent).
    pub fn open(&self) -> anyhow::Result<Arc<dyn ObjectStore>> {
        self.open_with(None)
    }

    /// [`Location::open`] with the Blob account given by `connection_string` instead of the environment
    /// (`None`: the environment). Local locations ignore it.
    pub fn open_with(&self, connection_string: Option<&str>) -> anyhow::Result<Arc<dyn ObjectStore>> {
        match self {
            Location::Local(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating repository directory {}", dir.display()))?;
                let fs = LocalFileSystem::new_with_prefix(dir)
                    .with_context(|| format!("opening repository {}", dir.display()))?;
                Ok(Arc::new(fs))
            }
            Location::AzureBlob { container, prefix } => {
                let account = BlobAccount::select(connection_string).with_context(|| format!("repository {self}"))?;
                let store = account
                    .builder()
                    .with_container_name(container)
                    .build()
                    .with_context(|| format!("repository {self}"))?;
                let inner: Arc<dyn ObjectStore> = if prefix.is_empty() {
                    Arc::new(store)
                } else {
                    Arc::new(PrefixStore::new(store, prefix.as_str()))
                };
                Ok(Arc::new(BlobRepository { inner, location: self.to_string(), container: container.clone() }))
            }
        }
    }

    /// Create the Blob container if it does not exist (true when it was created), with the account of
    /// `connection_string` or else the environment. Needs an account key or SAS; a local location is a
    /// no-op (`open` creates directories).
    pub async fn create_container(&self, connection_string: Option<&str>) -> anyhow::Result<bool> {
        let Location::AzureBlob { container, .. } = self else { return Ok(false) };
        let account = BlobAccount::select(connection_string).with_context(|| format!("repository {self}"))?;
        account
            .create_container(container)
            .await
            .with_context(|| format!("creating container {container} of repository {self}"))
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(dir) => write!(f, "{}", dir.display()),
            Location::AzureBlob { container, prefix } if prefix.is_empty() => write!(f, "az://{container}"),
            Location::AzureBlob { container, prefix } => write!(f, "az://{container}/{prefix}"),
        }
    }
}

/// A Blob repository's store: object_store's Azure client, except that an error saying the container
/// does not exist becomes one line naming the repository and the container (rather than a 404 with an
/// XML body, which reads would otherwise take for "object not found" and so for an empty repository).
#[derive(Debug)]
struct BlobRepository {
    inner: Arc<dyn ObjectStore>,
    /// `az://CONTAINER/PREFIX`, for messages.
    location: String,
    container: String,
}

impl fmt::Display for BlobRepository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.location)
    }
}

fn container_error(location: &str, container: &str, e: object_store::Error) -> object_store::Error {
    if e.to_string().contains("ContainerNotFound") {
        let msg = format!(
            "repository {location}: Blob container {container} does not exist (ContainerNotFound); create it first"
        );
        object_store::Error::Generic { store: "MicrosoftAzure", source: msg.into() }
    } else {
        e
    }
}

impl BlobRepository {
    fn map(&self) -> impl Fn(object_store::Error) -> object_store::Error + Send + 'static {
        let (location, container) = (self.location.clone(), self.container.clone());
        move |e| container_error(&location, &container, e)
    }
}

#[async_trait::async_trait]
impl ObjectStore for BlobRepository {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await.map_err(self.map())
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await.map_err(self.map())
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await.map_err(self.map())
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> object_store::Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await.map_err(self.map())
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations).map_err(self.map()).boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix).map_err(self.map()).boxed()
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset).map_err(self.map()).boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await.map_err(self.map())
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await.map_err(self.map())
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> object_store::Result<()> {
        self.inner.rename_opts(from, to, options).await.map_err(self.map())
    }
}

/// Open the store of a location string: [`Location::parse`] then [`Location::open`].
pub fn open(location: &str) -> anyhow::Result<Arc<dyn ObjectStore>> {
    Location::parse(location)?.open()
}

/// Azure's container rule: 3 to 63 of `[a-z0-9-]`, starting and ending with a letter or digit, no `--`.
fn check_container(name: &str) -> Result<(), String> {
    let ok_chars = name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let ok_ends = !name.starts_with('-') && !name.ends_with('-');
    if (3..=63).contains(&name.len()) && ok_chars && ok_ends && !name.contains("--") {
        Ok(())
    } else {
        Err(format!("{name:?} is not a Blob container name (3-63 of a-z, 0-9 and single inner hyphens)"))
    }
}

/// How the repository's storage account is reached.
enum BlobAccount {
    /// From a connection string.
    Explicit { account: String, endpoint: String, auth: BlobAuth },
    /// From object_store's `AZURE_*` variables (account key, SAS, workload or managed identity).
    Environment,
}

enum BlobAuth {
    /// Base64 account key.
    Key(String),
    /// SAS token without the leading `?`.
    Sas(String),
}

impl BlobAccount {
    /// The account of `connection_string`, else of the environment (see the module's docs).
    fn select(connection_string: Option<&str>) -> anyhow::Result<Self> {
        if let Some(conn) = connection_string {
            return Self::from_connection_string(conn).context("the connection string");
        }
        for var in [CONNECTION_STRING_VAR, STANDARD_CONNECTION_STRING_VAR] {
            if let Ok(conn) = std::env::var(var)
                && !conn.trim().is_empty()
            {
                return Self::from_connection_string(&conn).with_context(|| format!("the connection string in {var}"));
            }
        }
        if std::env::var_os("AZURE_STORAGE_ACCOUNT_NAME").is_none() {
            bail!(
                "no Blob account: set {CONNECTION_STRING_VAR} (or {STANDARD_CONNECTION_STRING_VAR}) to a connection string, or AZURE_STORAGE_ACCOUNT_NAME with a key, SAS or identity"
            );
        }
        Ok(BlobAccount::Environment)
    }

    /// Parse Azure's `Key=Value;` connection string for the Blob service: `AccountName`, `AccountKey`,
    /// `SharedAccessSignature`, `BlobEndpoint`, `DefaultEndpointsProtocol`, `EndpointSuffix`,
    /// `UseDevelopmentStorage=true`. Errors never echo the secret.
    fn from_connection_string(conn: &str) -> anyhow::Result<Self> {
        let mut get = std::collections::HashMap::new();
        for part in conn.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((k, v)) = part.split_once('=') else {
                let name = part.get(..part.len().min(20)).unwrap_or("");
                bail!("malformed part starting {name:?} (expected Key=Value)");
            };
            get.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
        let dev = get.get("usedevelopmentstorage").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let account = match (get.get("accountname"), dev) {
            (Some(a), _) => a.clone(),
            (None, true) => DEV_ACCOUNT_NAME.to_string(),
            (None, false) => bail!("no AccountName"),
        };
        let endpoint = match (get.get("blobendpoint"), dev) {
            (Some(e), _) => e.trim_end_matches('/').to_string(),
            (None, true) => DEV_BLOB_ENDPOINT.to_string(),
            (None, false) if get.contains_key("fileendpoint") => {
                bail!(
                    "it names a FileEndpoint but no BlobEndpoint (set {CONNECTION_STRING_VAR} for the repository's account)"
                )
            }
            (None, false) => {
                let protocol = get.get("defaultendpointsprotocol").map(String::as_str).unwrap_or("https");
                let suffix = get.get("endpointsuffix").map(String::as_str).unwrap_or("core.windows.net");
                format!("{protocol}://{account}.blob.{suffix}")
            }
        };
        let url =
            url::Url::parse(&endpoint).map_err(|e| anyhow::anyhow!("BlobEndpoint {endpoint:?} is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            bail!("BlobEndpoint {endpoint:?} is not an http(s) URL");
        }
        let auth = if let Some(k) = get.get("accountkey") {
            BlobAuth::Key(k.clone())
        } else if let Some(s) = get.get("sharedaccesssignature") {
            BlobAuth::Sas(s.trim_start_matches('?').to_string())
        } else if dev {
            BlobAuth::Key(AZURITE_ACCOUNT_KEY.to_string())
        } else {
            bail!("no AccountKey or SharedAccessSignature");
        };
        Ok(BlobAccount::Explicit { account, endpoint, auth })
    }

    fn builder(&self) -> MicrosoftAzureBuilder {
        let options = ClientOptions::new().with_timeout(REQUEST_TIMEOUT);
        let retry = RetryConfig::default();
        match self {
            BlobAccount::Environment => {
                MicrosoftAzureBuilder::from_env().with_client_options(options).with_retry(retry)
            }
            BlobAccount::Explicit { account, endpoint, auth } => {
                let b = MicrosoftAzureBuilder::new()
                    .with_client_options(options)
                    .with_retry(retry)
                    .with_account(account)
                    .with_endpoint(endpoint.clone())
                    .with_allow_http(endpoint.starts_with("http:"));
                match auth {
                    BlobAuth::Key(k) => b.with_access_key(k),
                    BlobAuth::Sas(s) => {
                        b.with_sas_authorization(crate::azure::credential::query_pairs(s).collect::<Vec<_>>())
                    }
                }
            }
        }
    }

    /// `Create Container` (x-ms-version 2021-08-06): 201 created, 409 `ContainerAlreadyExists` is fine.
    async fn create_container(&self, container: &str) -> anyhow::Result<bool> {
        use crate::azure::credential::{shared_key_authorization, shared_key_string_to_sign};
        use base64::Engine as _;
        let BlobAccount::Explicit { account, endpoint, auth } = self else {
            bail!("creating a container needs a connection string with an AccountKey or SharedAccessSignature");
        };
        let mut url = url::Url::parse(&format!("{endpoint}/{container}"))?;
        url.set_query(Some("restype=container"));
        let mut headers = http::HeaderMap::new();
        headers.insert("x-ms-version", http::HeaderValue::from_static("2021-08-06"));
        headers
            .insert("x-ms-date", http::HeaderValue::from_str(&httpdate::fmt_http_date(std::time::SystemTime::now()))?);
        headers.insert("content-length", http::HeaderValue::from_static("0"));
        match auth {
            BlobAuth::Key(k) => {
                let key =
                    base64::engine::general_purpose::STANDARD.decode(k.trim()).context("AccountKey is not base64")?;
                let sts = shared_key_string_to_sign("PUT", account, url.path(), url.query().unwrap_or(""), &headers);
                headers.insert(
                    "authorization",
                    http::HeaderValue::from_str(&shared_key_authorization(account, &key, &sts))?,
                );
            }
            BlobAuth::Sas(s) => url.set_query(Some(&format!("restype=container&{s}"))),
        }
        let resp = reqwest::Client::new().put(url).headers(headers).send().await?;
        let status = resp.status();
        if status.as_u16() == 201 {
            return Ok(true);
        }
        let code = resp.headers().get("x-ms-error-code").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        if status.as_u16() == 409 && code == "ContainerAlreadyExists" {
            return Ok(false);
        }
        bail!("{} {code}", status.as_u16())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_to_their_kind() {
        assert_eq!(Location::parse("/srv/afb").unwrap(), Location::Local("/srv/afb".into()));
        assert_eq!(Location::parse("rel/dir").unwrap(), Location::Local("rel/dir".into()));
        assert_eq!(Location::parse("file:///srv/afb").unwrap(), Location::Local("/srv/afb".into()));
        let az = Location::parse("az://backups/prod/eu/").unwrap();
        assert_eq!(az, Location::AzureBlob { container: "backups".into(), prefix: "prod/eu".into() });
        assert_eq!(az.to_string(), "az://backups/prod/eu");
        assert_eq!(az.child("nodeindex").to_string(), "az://backups/prod/eu/nodeindex");
        assert_eq!(Location::parse("az://backups").unwrap().child("nodeindex").to_string(), "az://backups/nodeindex");
        assert_eq!(
            Location::parse("/srv/afb").unwrap().child("nodeindex"),
            Location::Local("/srv/afb/nodeindex".into())
        );
    }

    #[test]
    fn bad_locations_are_one_line_naming_the_location() {
        for (loc, says) in [
            ("", "empty"),
            ("s3://bucket/x", "unsupported scheme s3://"),
            ("file://relative", "absolute path"),
            ("az://Backups/x", "not a Blob container name"),
            ("az://ab", "not a Blob container name"),
            ("az://a--b/x", "not a Blob container name"),
            ("az://backups/a//b", "prefix"),
            ("az://backups/a/../b", "prefix"),
        ] {
            let e = Location::parse(loc).unwrap_err().to_string();
            assert!(e.contains(says) && e.contains(&format!("{loc:?}")) && !e.contains('\n'), "{loc}: {e}");
        }
    }

    #[test]
    fn connection_strings_name_the_blob_endpoint() {
        let endpoint = |c: &str| match BlobAccount::from_connection_string(c).unwrap() {
            BlobAccount::Explicit { account, endpoint, .. } => (account, endpoint),
            BlobAccount::Environment => unreachable!(),
        };
        assert_eq!(endpoint("UseDevelopmentStorage=true"), ("devstoreaccount1".into(), DEV_BLOB_ENDPOINT.into()));
        assert_eq!(
            endpoint("AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net"),
            ("acct".into(), "https://acct.blob.core.windows.net".into())
        );
        assert_eq!(
            endpoint(
                "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:41234/devstoreaccount1/;"
            ),
            ("devstoreaccount1".into(), "http://127.0.0.1:41234/devstoreaccount1".into())
        );
        let err = |c: &str| BlobAccount::from_connection_string(c).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err("AccountName=a;AccountKey=k;FileEndpoint=http://127.0.0.1:10004/a").contains("no BlobEndpoint"));
        assert!(err("AccountName=a").contains("no AccountKey"));
        assert!(err("AccountKey=secretsecret").contains("no AccountName"));
        let e = err("AccountName=a;secretsecretsecretsecret");
        assert!(e.contains("malformed") && !e.contains("secretsecretsecretsecret"), "{e}");
    }
}
