//! The REST API (`/api/v1`) and the route table `/openapi.json` is generated from.
//!
//! Every route under `/api/v1` takes `Authorization: Bearer TOKEN`. A tenant token sees its own tenant
//! only: another tenant's resources answer 404 `not_found` exactly as if they did not exist. Operator-only
//! routes answer 403 `forbidden` to tenant tokens.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::SharedState;
use super::auth::Scope;
use super::error::{ApiError, ApiJson, ApiQuery};
use crate::index::manifest::{IndexManifest, LayerKind, check_id};
use crate::jobs::settings::{SettingsInput, SettingsView};

/// The caller of an API route, from its bearer token.
pub struct ApiUser(pub Scope);

impl FromRequestParts<SharedState> for ApiUser {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut http::request::Parts, state: &SharedState) -> Result<Self, ApiError> {
        let Some(h) = parts.headers.get(http::header::AUTHORIZATION) else {
            return Err(ApiError::unauthorized("missing Authorization: Bearer token"));
        };
        let v = h.to_str().map_err(|_| ApiError::unauthorized("Authorization header is not text"))?;
        let Some(t) = v.strip_prefix("Bearer ") else {
            return Err(ApiError::unauthorized("Authorization must be \"Bearer TOKEN\""));
        };
        check_token_limited(state, client_ip(parts), t).await.map(ApiUser)
    }
}

/// The address of the client of a request, when the server recorded it (`afb serve` does).
pub fn client_ip(parts: &http::request::Parts) -> Option<std::net::IpAddr> {
    parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip())
}

/// [`client_ip`] as an extractor.
pub struct ClientIp(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(parts)))
    }
}

/// [`super::auth::Auth::check_token`] behind the failure limiter: 429 once the client's address or the
/// token's prefix has failed too often (see [`super::limit`]); every 401 counts as a failure.
pub async fn check_token_limited(
    st: &SharedState,
    addr: Option<std::net::IpAddr>,
    token: &str,
) -> Result<Scope, ApiError> {
    let keys = super::limit::keys(addr, token);
    st.limiter.check(&keys).map_err(ApiError::too_many)?;
    let r = st.auth.check_token(token).await;
    if r.as_ref().is_err_and(|e| e.status == StatusCode::UNAUTHORIZED) {
        st.limiter.fail(&keys);
    }
    r
}

/// One documented route.
pub struct RouteDoc {
    pub method: &'static str,
    /// axum path syntax (`{tenant}`), also OpenAPI's.
    pub path: &'static str,
    pub summary: &'static str,
    pub operator_only: bool,
    /// (name, description) of query parameters.
    pub query: &'static [(&'static str, &'static str)],
    /// Example JSON body, for routes that take one.
    pub body: Option<&'static str>,
    /// HTTP status of success (200, 201 Created, 202 Accepted).
    pub status: u16,
}

const fn r(method: &'static str, path: &'static str, summary: &'static str) -> RouteDoc {
    RouteDoc { method, path, summary, operator_only: false, query: &[], body: None, status: 200 }
}

/// Every API route. The router below registers exactly these (a test checks both agree).
pub const ROUTES: &[RouteDoc] = &[
    r("get", "/api/v1/tenants", "Tenants visible to the caller, with share counts and totals"),
    r("get", "/api/v1/tenants/{tenant}", "One tenant and its shares"),
    r(
        "get",
        "/api/v1/tenants/{tenant}/shares",
        "Shares of a tenant with their latest snapshot (registered shares without one too)",
    ),
    RouteDoc {
        status: 201,
        body: Some(
            r#"{"share": "finance", "connection_string": "DefaultEndpointsProtocol=https;AccountName=...;AccountKey=...", "azure_share": null}"#,
        ),
        ..r(
            "post",
            "/api/v1/tenants/{tenant}/shares",
            "Register a share and its Azure source before its first snapshot (201; secrets never returned). Tenant tokens: their own tenant; the operator: any, a new tenant too",
        )
    },
    r(
        "get",
        "/api/v1/tenants/{tenant}/shares/{share}",
        "One share: latest snapshot and connection settings (secrets never returned)",
    ),
    RouteDoc {
        operator_only: true,
        body: Some(r#"{"connection_string": "DefaultEndpointsProtocol=https;AccountName=...;AccountKey=..."}"#),
        ..r(
            "put",
            "/api/v1/tenants/{tenant}/shares/{share}/settings",
            "Set a share's Azure connection settings (operator)",
        )
    },
    r("get", "/api/v1/tenants/{tenant}/shares/{share}/snapshots", "Snapshots of a share"),
    r("get", "/api/v1/tenants/{tenant}/shares/{share}/snapshots/{snapshot}", "One snapshot"),
    RouteDoc {
        query: &[
            ("path", "directory path, `/` by default"),
            ("cursor", "from `next_cursor` of the previous page"),
            ("limit", "entries per page, 1-5000, default 500"),
        ],
        ..r(
            "get",
            "/api/v1/tenants/{tenant}/shares/{share}/snapshots/{snapshot}/browse",
            "Entries of a directory with sizes and subtree totals, paginated",
        )
    },
    RouteDoc {
        query: &[("glob", "`*`, `?`, `**`; without `/` it matches names"), ("limit", "1-10000, default 1000")],
        ..r(
            "get",
            "/api/v1/tenants/{tenant}/shares/{share}/snapshots/{snapshot}/search",
            "Nodes whose path matches a glob",
        )
    },
    RouteDoc {
        query: &[
            ("from", "older snapshot id"),
            ("to", "newer snapshot id"),
            ("limit", "changes listed, 0-10000, default 1000"),
        ],
        ..r(
            "get",
            "/api/v1/tenants/{tenant}/shares/{share}/diff",
            "Changes between two snapshots: summary and changed nodes with paths",
        )
    },
    r("get", "/api/v1/tenants/{tenant}/shares/{share}/trends", "Files, bytes and added/modified/deleted per snapshot"),
    RouteDoc {
        query: &[("tenant", "only this tenant's jobs"), ("limit", "1-1000, default 100")],
        ..r("get", "/api/v1/jobs", "Jobs visible to the caller, newest first")
    },
    RouteDoc {
        query: &[("limit", "1-1000, default 100")],
        ..r("get", "/api/v1/tenants/{tenant}/shares/{share}/jobs", "Jobs of a share, newest first")
    },
    RouteDoc {
        status: 202,
        body: Some(
            r#"{"kind": "restore", "snapshot": null, "path": "/docs", "target": {"kind": "local", "path": "/srv/restore"}, "overwrite": false}"#,
        ),
        ..r(
            "post",
            "/api/v1/tenants/{tenant}/shares/{share}/jobs",
            "Start a scan, backup, restore or verify of a share (202 with the job)",
        )
    },
    r("get", "/api/v1/jobs/{job}", "Status and progress of a job"),
    r("get", "/api/v1/jobs/{job}/progress", "Progress of a job (state, last reported progress, error)"),
    r("post", "/api/v1/jobs/{job}/cancel", "Cancel a job (409 if it already ended)"),
];

pub fn router() -> Router<SharedState> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/api/v1/tenants", get(tenants))
        .route("/api/v1/tenants/{tenant}", get(tenant))
        .route("/api/v1/tenants/{tenant}/shares", get(shares).post(create_share))
        .route("/api/v1/tenants/{tenant}/shares/{share}", get(share))
        .route("/api/v1/tenants/{tenant}/shares/{share}/settings", put(put_settings))
        .route("/api/v1/tenants/{tenant}/shares/{share}/snapshots", get(snapshots))
        .route("/api/v1/tenants/{tenant}/shares/{share}/snapshots/{snapshot}", get(snapshot))
        .route("/api/v1/tenants/{tenant}/shares/{share}/snapshots/{snapshot}/browse", get(browse))
        .route("/api/v1/tenants/{tenant}/shares/{share}/snapshots/{snapshot}/search", get(search))
        .route("/api/v1/tenants/{tenant}/shares/{share}/diff", get(diff))
        .route("/api/v1/tenants/{tenant}/shares/{share}/trends", get(trends))
        .route("/api/v1/jobs", get(jobs))
        .route("/api/v1/tenants/{tenant}/shares/{share}/jobs", post(start_job).get(share_jobs))
        .route("/api/v1/jobs/{job}", get(job))
        .route("/api/v1/jobs/{job}/progress", get(job_progress))
        .route("/api/v1/jobs/{job}/cancel", post(cancel_job))
        .fallback(not_found)
}

async fn not_found(uri: http::Uri) -> ApiError {
    ApiError::not_found(format!("no route {}", uri.path()))
}

/// A snapshot's summary as the API returns it.
pub fn snapshot_json(m: &IndexManifest) -> Value {
    json!({
        "snapshot_id": m.snapshot_id,
        "created_at": m.created_at,
        "kind": if m.layers.last().is_some_and(|l| l.kind == LayerKind::Delta && l.snapshot_id == m.snapshot_id) { "delta" } else { "base" },
        "nodes": m.totals.nodes, "files": m.totals.files, "dirs": m.totals.dirs, "bytes": m.totals.bytes,
        "stored_bytes": m.own_bytes(),
    })
}

/// One share of the overview. A share registered with its settings but never scanned has `snapshots: 0`
/// and no `last_*` values.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ShareRow {
    pub tenant_id: String,
    pub share_id: String,
    pub snapshots: usize,
    pub files: u64,
    pub bytes: u64,
    pub last_snapshot_id: Option<i64>,
    pub last_snapshot_at: Option<String>,
    /// Seconds since the last snapshot.
    pub age_seconds: Option<i64>,
}

/// Every share the scope sees (optionally of one tenant), sorted by tenant and share: those with
/// snapshots (with the latest one; reads manifests only) and those registered in the settings store.
pub async fn share_rows(st: &SharedState, scope: &Scope, tenant: Option<&str>) -> Result<Vec<ShareRow>, ApiError> {
    let now = time::OffsetDateTime::now_utc();
    let mut shares: std::collections::BTreeSet<(String, String)> = st.index.shares().await?.into_iter().collect();
    shares.extend(st.settings.shares().map_err(ApiError::internal)?);
    let mut out = Vec::new();
    for (t, s) in shares {
        if !scope.sees(&t)
            || tenant.is_some_and(|x| x != t)
            || check_id("tenant", &t).is_err()
            || check_id("share", &s).is_err()
        {
            continue;
        }
        let ids = st.index.repo.snapshot_ids(&t, &s).await.map_err(ApiError::internal)?;
        let mut row = ShareRow {
            tenant_id: t,
            share_id: s,
            snapshots: ids.len(),
            files: 0,
            bytes: 0,
            last_snapshot_id: None,
            last_snapshot_at: None,
            age_seconds: None,
        };
        if let Some(&last) = ids.last() {
            let m = st.index.manifest(&row.tenant_id, &row.share_id, last).await?;
            let at = time::OffsetDateTime::parse(&m.created_at, &time::format_description::well_known::Rfc3339)
                .unwrap_or(now);
            row.files = m.totals.files;
            row.bytes = m.totals.bytes;
            row.last_snapshot_id = Some(last);
            row.last_snapshot_at = Some(m.created_at.clone());
            row.age_seconds = Some((now - at).whole_seconds());
        }
        out.push(row);
    }
    Ok(out)
}

/// The snapshots (oldest first, maybe none) and settings of a share the scope sees. 404 `not_found` for
/// another tenant's share and for one with neither snapshots nor settings.
pub async fn share_state(
    st: &SharedState,
    scope: &Scope,
    t: &str,
    s: &str,
) -> Result<(Vec<IndexManifest>, SettingsView), ApiError> {
    scope.check_tenant(t)?;
    let ms = st.index.manifests_or_none(t, s).await?;
    let settings = st.settings.get(t, s).map_err(ApiError::internal)?;
    if ms.is_empty() && !settings.configured {
        return Err(ApiError::not_found(format!("share {t}/{s} not found")));
    }
    Ok((ms, settings))
}

/// The body of `POST /api/v1/tenants/{tenant}/shares` (unknown fields refused).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewShare {
    /// The share's id in afb; also its name in Azure unless `azure_share` says otherwise.
    pub share: String,
    pub connection_string: Option<String>,
    pub sas_url: Option<String>,
    pub azure_share: Option<String>,
}

/// Register a share of tenant `t` with its Azure source, before it has any snapshot. Shared by the API and
/// the dashboard's "Add share" form. Tenant tokens register in their own tenant only (404 otherwise, like
/// every other tenant's resource); the operator in any tenant, which creates a new tenant. 422
/// `invalid_body` for a name Azure would refuse, 422 `invalid_settings` for a bad credential, 409
/// `share_exists` if the share has settings or snapshots already. Returns the share as `GET` shows it.
pub async fn register_share(st: &SharedState, scope: &Scope, t: &str, body: NewShare) -> Result<Value, ApiError> {
    scope.check_tenant(t)?;
    let unprocessable = |code: &'static str, m: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, m);
    check_id("tenant", t).map_err(|e| unprocessable("invalid_body", format!("{e:#}")))?;
    let s = body.share.as_str();
    if !crate::azure::is_valid_share_name(s) {
        return Err(unprocessable("invalid_body", format!("share {s:?}: {}", crate::jobs::settings::SHARE_NAME_RULE)));
    }
    let exists = || {
        ApiError::new(
            StatusCode::CONFLICT,
            "share_exists",
            format!("share {t}/{s} exists already; change its source with PUT .../shares/{s}/settings (operator)"),
        )
    };
    if !st.index.repo.snapshot_ids(t, s).await.map_err(ApiError::internal)?.is_empty() {
        return Err(exists());
    }
    let input = SettingsInput {
        connection_string: body.connection_string,
        sas_url: body.sas_url,
        azure_share: body.azure_share,
    };
    // Where the share's client may connect: anywhere for the operator and for hosts the operator
    // allowed; public addresses only for a tenant's source on Azure's endpoints; nowhere else.
    let policy = match scope {
        Scope::Operator => crate::azure::AddressPolicy::Any,
        Scope::Tenant(_) => match st.settings.tenant_policy(&input) {
            Err(e) => return Err(unprocessable("invalid_settings", format!("{e:#}"))),
            Ok(Err((host, allowed))) => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "endpoint_not_allowed",
                    format!(
                        "a tenant may not register a source on {host} (allowed: {}); an operator can, or can allow it with afb serve --allow-endpoint",
                        allowed.join(", ")
                    ),
                ));
            }
            Ok(Ok(p)) => p,
        },
    };
    match st.settings.insert_new(t, s, input, policy) {
        Err(e) => Err(settings_error(e)),
        Ok(None) => Err(exists()),
        Ok(Some(v)) => Ok(json!({ "tenant_id": t, "share_id": s, "snapshots": 0, "latest": null, "settings": v })),
    }
}

/// 422 `invalid_settings` for an unusable source, 409 `no_master_key` when secrets cannot be sealed.
fn settings_error(e: crate::jobs::settings::SettingsError) -> ApiError {
    use crate::jobs::settings::SettingsError;
    match e {
        SettingsError::Invalid(m) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_settings", m),
        SettingsError::NoMasterKey => {
            ApiError::new(StatusCode::CONFLICT, "no_master_key", SettingsError::NoMasterKey.to_string())
        }
        SettingsError::Io(e) => ApiError::internal(e),
    }
}

fn tenant_summaries(rows: &[ShareRow]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut i = 0;
    while i < rows.len() {
        let t = &rows[i].tenant_id;
        let same: Vec<&ShareRow> = rows[i..].iter().take_while(|r| &r.tenant_id == t).collect();
        out.push(json!({
            "tenant_id": t, "shares": same.len(),
            "files": same.iter().map(|r| r.files).sum::<u64>(), "bytes": same.iter().map(|r| r.bytes).sum::<u64>(),
            "last_snapshot_at": same.iter().filter_map(|r| r.last_snapshot_at.as_deref()).max(),
        }));
        i += same.len();
    }
    out
}

async fn tenants(State(st): State<SharedState>, ApiUser(scope): ApiUser) -> Result<Json<Value>, ApiError> {
    let rows = share_rows(&st, &scope, None).await?;
    Ok(Json(json!({ "tenants": tenant_summaries(&rows) })))
}

async fn tenant(
    State(st): State<SharedState>,
    ApiUser(scope): ApiUser,
    Path(t): Path<String>,
) -> Result<Json<Value>, ApiError> {
    scope.check_tenant(&t)?;
    let rows = share_rows(&st, &scope, Some(&t)).await?;
    let Some(summary) = tenant_summaries(&rows).pop() else {
        return Err(ApiError::not_found(format!("tenant {t:?} not found")));
    };
    Ok(Json(json!({ "tenant": summary, "shares": rows })))
}

async fn shares(
    State(st): State<SharedState>,
    ApiUser(scope): ApiUser,
    Path(t): Path<String>,
) -> Result<Json<Value>, ApiError> {
    scope.check_tenant(&t)?;
    let rows = share_rows(&st, &scope, Some(&t)).await?;
    if rows.is_empty() {
        return Err(ApiError::not_found(format!("tenant {t:?} not found")));
    }
    Ok(Json(json!({ "shares": rows })))
}

async fn create_share(
    State(st): State<SharedState>,
    ApiUser(scope): ApiUser,
    Path(t): Path<String>,
    ApiJson(body): ApiJson<NewShare>,
) -> Result<(StatusCode, [(http::HeaderName, String); 1], Json<Value>), ApiError> {
    let v = register_share(&st, &scope, &t, body).await?;
    let location = format!("/api/v1/tenants/{t}/shares/{}", v["share_id"].as_str().unwrap_or_default());
    Ok((StatusCode::CREATED, [(http::header::LOCATION, location)], Json(v)))
}

async fn share(
    State(st): State<SharedState>,
    ApiUser(scope): ApiUser,
    Path((t, s)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (ms, settings) = share_state(&st, &scope, &t, &s).await?;
    Ok(Json(
        json!({ "tenant_id": t, "share_id": s, "snapshots": ms.len(), "latest": ms.last().map(snapshot_json), "settings": settings }),
    ))
}

async fn put_settings(
    State(st): State<SharedState>,
    ApiUser(scope): ApiUser,
    Path((t, s)): Path<(String, String)>,
    ApiJson(input): ApiJson<SettingsInput>,
) -> Result<Json<Value>, ApiError> {
    scope.check_tenant(&t)?;
    scope.require_operator()?;
    share_state(&st, &scope, &t, &s).await?;
    let v = st.settings.put(&t, &s, input).map_err(settings_error)?;
    Ok(Json(json!({ "settings": v })))
}

async fn snapshots(
    State(st): State<SharedState>,
    ApiUser(scope): ApiUser,
    Path((t, s)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (ms, _) = share_state(&st, &scope, &t, &s).await?;
    Ok(Json(json!({ "snapshots": ms.iter().map(snapshot_json).collect::<Vec<_>>() })))
}

fn parse_id(what: &str, v: &str) -> Result<i64, ApiError> {
    v.parse::<i64>()
        .ok()
        .filter(|x| *x >= 1)
        .ok_or_else(|| ApiError::bad_request(format!("{what} {v:?} is not a positive integer")))
}

/// Resolve tenant/share/snapshot path parameters after the scope check.
pub async fn snapshot_of(
    st: &SharedState,
    scope: &Scope,
    t: &str,
    s: &str,
    id: &str,
) -> Result<IndexManifest, ApiError> {
    scope.check_tenant(t)?;
    let id = parse_id("snapshot", id)?;
    st.index.manifest(t, s, id).await
}

async fn snapshot(
    State(st): State<SharedState>,
    ApiUser(scope): ApiUser,
    Path((t, s, id)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let m = snapshot_of(&st, &scope, &t, &s, &id).await?;
    Ok(Json(snapshot_json(&m)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrowseQuery {
    pub path: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<usize>,
}

fn limit(v: Option<usize>, default: usize, max: usize, min: usize) -> Result<usize, ApiError> {
    let l = v.unwrap_or(default);
    if l < min || l > max {
        return Err(ApiError::bad_request(format!("limit {l} is out of range {min}..={max}")));
    }
    Ok(l)
}

async fn browse(
    State(st): State<SharedState>,
    ApiUser(scope): ApiUser,
    Path((t, s, id)): Path<(String, String, String)>,
    ApiQuery(q): ApiQuery<BrowseQuery>,
) -> Result<Json<Value>, ApiError> {
    let m = snapshot_of(&st, &scope, &t, &s, &id).await?;
    let l = st
        .index
        .browse(&m, q.path.as_deref().unwrap_or("/"), q.cursor.as_deref(), limit(q.limit, 500, 5000, 1)?)
        .await?;
    Ok(Json(serde_json::to_value(l).map_err(|e| ApiError::internal(e.into()))?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchQuery {
    glob: Option<String>,
    limit: Option<usize>,
}

async fn search(
    State(st): State<SharedState>,
    ApiUser(scope): ApiUser,
    Path((t, s, id)): Path<(String, String, String)>,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> Result<Json<Value>, ApiError> {
    let m = snapshot_of(&st, &scope, &t, &s, &id).await?;
    let Some(glob) = q.glob.filter(|g| !g.is_empty()) else {
        return Err(ApiError::bad_request("query parameter glob is required"));
    };
    let (hits, truncated) = st.index.search(&m, &glob, limit(q.limit, 1000, 10_000, 1)?).await?;
    Ok(Json(json!({ "glob": glob, "results": hits, "truncated": truncated })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<usize>,
}

async fn diff(
    State(st): State<SharedState>,
    ApiUser(scope): ApiUser,
    Path((t, s)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<DiffQuery>,
) -> Result<Json<Value>, ApiError> {
    scope.check_tenant(&t)?;
    let (Some(from), Some(to)) = (q.from.as_deref(), q.to.as_deref()) else {
        return Err(ApiError::bad_request("query parameters from and to are required"));
    };
    let old = snapshot_of(&st, &scope, &t, &s, from).await?;
    let new = snapshot_of(&st, &scope, &t, &s, to).await?;
    let d = st.index.diff(&old, &new, limit(q.limit, 1000, 10_000, 0)?).await?;
    Ok(Json(serde_json::to_value(d).map_err(|e| ApiError::internal(e.into()))?))
}

async fn trends(
    State(st): State<SharedState>,
    ApiUser(scope): ApiUser,
    Path((t, s)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (ms, _) = share_state(&st, &scope, &t, &s).await?;
    Ok(Json(json!({ "tenant_id": t, "share_id": s, "points": st.index.trends(&ms).await? })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobsQuery {
    tenant: Option<String>,
    limit: Option<usize>,
}

fn job_id(v: &str) -> Result<i64, ApiError> {
    parse_id("job", v)
}

async fn jobs(
    State(st): State<SharedState>,
    ApiUser(scope): ApiUser,
    ApiQuery(q): ApiQuery<JobsQuery>,
) -> Result<Json<Value>, ApiError> {
    if let Some(t) = &q.tenant {
        scope.check_tenant(t)?;
    }
    let v = st.jobs.list(&scope, q.tenant.as_deref(), None, limit(q.limit, 100, 1000, 1)?).await?;
    Ok(Json(json!({ "jobs": v.iter().map(super::jobs::job_json).collect::<Vec<_>>() })))
}

async fn share_jobs(
    State(st): State<SharedState>,
    ApiUser(scope): ApiUser,
    Path((t, s)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<JobsQuery>,
) -> Result<Json<Value>, ApiError> {
    scope.check_tenant(&t)?;
    if q.tenant.is_some() {
        return Err(ApiError::bad_request("tenant is part of the path here"));
    }
    let v = st.jobs.list(&scope, Some(&t), Some(&s), limit(q.limit, 100, 1000, 1)?).await?;
    Ok(Json(json!({ "jobs": v.iter().map(super::jobs::job_json).collect::<Vec<_>>() })))
}

/// Validate and enqueue a job for a share the scope sees. Shared by the API and the dashboard's forms.
pub async fn start_job_for(
    st: &SharedState,
    scope: &Scope,
    t: &str,
    s: &str,
    body: &Value,
) -> Result<super::jobs::JobView, ApiError> {
    scope.check_tenant(t)?;
    crate::index::manifest::check_id("tenant", t).map_err(|e| ApiError::not_found(format!("{e:#}")))?;
    crate::index::manifest::check_id("share", s).map_err(|e| ApiError::not_found(format!("{e:#}")))?;
    let (kind, payload) = super::jobs::payload_for(scope, st.restore_root.as_deref(), t, s, body)?;
    let settings = st.settings.get(t, s).map_err(ApiError::internal)?;
    let has_snapshots = !st.index.repo.snapshot_ids(t, s).await.map_err(ApiError::internal)?.is_empty();
    if !settings.configured && !has_snapshots {
        return Err(ApiError::not_found(format!("share {t}/{s} not found")));
    }
    let needs_source = match kind {
        crate::jobs::JobKind::Scan | crate::jobs::JobKind::Backup => true,
        crate::jobs::JobKind::Restore => payload["target"]["kind"] != "local",
        _ => false,
    };
    if needs_source && !settings.configured {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "share_not_configured",
            format!("share {t}/{s} has no Azure connection settings; PUT .../settings first"),
        ));
    }
    if matches!(kind, crate::jobs::JobKind::Restore | crate::jobs::JobKind::Verify) && !has_snapshots {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_snapshots",
            format!("share {t}/{s} has no snapshots to {kind}"),
        ));
    }
    if let Some(target) = payload["target"]["share"].as_str()
        && !st.settings.get(t, target).map_err(ApiError::internal)?.configured
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "share_not_configured",
            format!("target share {t}/{target} has no Azure connection settings"),
        ));
    }
    if let (Scope::Tenant(_), Some(root), "local") =
        (scope, st.restore_root.as_deref(), payload["target"]["kind"].as_str().unwrap_or_default())
    {
        super::jobs::tenant_restore_dir(&root.join(t)).map_err(ApiError::internal)?;
    }
    let id = st.jobs.start(t, s, kind, payload).await?;
    st.jobs.get(scope, id).await
}

async fn start_job(
    State(st): State<SharedState>,
    ApiUser(scope): ApiUser,
    Path((t, s)): Path<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, [(http::HeaderName, String); 1], Json<Value>), ApiError> {
    let v = start_job_for(&st, &scope, &t, &s, &body).await?;
    Ok((
        StatusCode::ACCEPTED,
        [(http::header::LOCATION, format!("/api/v1/jobs/{}", v.job_id))],
        Json(super::jobs::job_json(&v)),
    ))
}

async fn job(
    State(st): State<SharedState>,
    ApiUser(scope): ApiUser,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let v = st.jobs.get(&scope, job_id(&id)?).await?;
    Ok(Json(super::jobs::job_json(&v)))
}

async fn job_progress(
    State(st): State<SharedState>,
    ApiUser(scope): ApiUser,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let v = st.jobs.get(&scope, job_id(&id)?).await?;
    Ok(Json(json!({ "job_id": v.job_id, "state": v.state, "progress": v.progress, "last_error": v.last_error })))
}

async fn cancel_job(
    State(st): State<SharedState>,
    ApiUser(scope): ApiUser,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let v = st.jobs.cancel(&scope, job_id(&id)?).await?;
    Ok(Json(super::jobs::job_json(&v)))
}

/// The OpenAPI 3.1 document, generated from [`ROUTES`].
pub fn openapi_doc() -> Value {
    let mut paths = serde_json::Map::new();
    for d in ROUTES {
        let mut params: Vec<Value> = d
            .path
            .split('/')
            .filter_map(|p| p.strip_prefix('{').and_then(|p| p.strip_suffix('}')))
            .map(|n| json!({"name": n, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        params.extend(d.query.iter().map(|(n, desc)| json!({"name": n, "in": "query", "required": false, "description": desc, "schema": {"type": "string"}})));
        let mut op = json!({
            "summary": d.summary,
            "operationId": format!("{}{}", d.method, d.path.replace(['{', '}'], "").replace('/', "_")),
            "parameters": params,
            "security": [{"bearer": []}],
            "responses": {
                "default": {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            },
        });
        let ok = match d.status {
            201 => "Created",
            202 => "Accepted",
            _ => "OK",
        };
        op["responses"][d.status.to_string()] =
            json!({"description": ok, "content": {"application/json": {"schema": {"type": "object"}}}});
        if d.operator_only {
            op["description"] = json!("Operator tokens only; tenant tokens get 403.");
        }
        if let Some(b) = d.body {
            let example: Value = serde_json::from_str(b).expect("route body examples are JSON");
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"type": "object"}, "example": example}}});
        }
        paths
            .entry(d.path.to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("object")
            .insert(d.method.to_string(), op);
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "afb API", "version": env!("CARGO_PKG_VERSION"), "description": "Azure Files Backup: tenants, shares, snapshots, browse, search, diff, trends, jobs."},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}},
        },
    })
}

async fn openapi() -> Json<Value> {
    Json(openapi_doc())
}
