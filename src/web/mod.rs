//! The web dashboard served by `afb serve`: askama templates (`templates/`), htmx from npm (served from
//! `node_modules`, never copied into the repository), SVG charts rendered on the server ([`chart`]).
//!
//! Login takes an API token and starts a session (cookie `afb_session`: HttpOnly, SameSite=Strict, and
//! Secure when served over https). The login form carries a CSRF token of its own (double-submit: a
//! cookie and a field that must agree); every other form the session's. A session lives only while its
//! token is valid: every request checks the token again. Pages see exactly what the session's token
//! sees through the API: another tenant's pages answer 404.

pub mod chart;
pub mod treemap;

use askama::Template;
use axum::Router;
use axum::extract::{Form, FromRequestParts, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::api::SharedState;
use crate::api::auth::{Session, cookie};
use crate::api::data::{ChangeRow, DirChange, Entry, Growth};
use crate::api::error::ApiError;
use crate::api::jobs::JobView;
use crate::api::routes::{NewShare, ShareRow, register_share, share_rows, share_state, snapshot_of, start_job_for};
use crate::index::manifest::IndexManifest;
use crate::jobs::JobState;
use crate::units;

const COOKIE: &str = "afb_session";
/// The login form's CSRF cookie (its value is also a hidden field of the form).
const LOGIN_COOKIE: &str = "afb_login";

pub fn router() -> Router<SharedState> {
    Router::new()
        .route("/", get(overview))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/static/htmx.min.js", get(htmx))
        .route("/t/{tenant}", get(tenant_page))
        .route("/t/{tenant}/s/{share}", get(share_page))
        .route("/t/{tenant}/s/{share}/snap/{snapshot}", get(browse_page))
        .route("/t/{tenant}/s/{share}/snap/{snapshot}/map", get(space_map))
        .route("/t/{tenant}/s/{share}/diff", get(diff_page))
        .route("/t/{tenant}/s/{share}/changes", get(changes_page))
        .route("/t/{tenant}/s/{share}/restore", post(restore))
        .route("/t/{tenant}/s/{share}/jobs", post(start_job).get(share_jobs))
        .route("/shares", post(add_share))
        .route("/jobs", get(jobs_page))
        .route("/jobs/{job}", get(job_page))
        .route("/jobs/{job}/status", get(job_status))
        .route("/jobs/{job}/cancel", post(cancel_job))
}

/// A logged-in browser; pages without one redirect to `/login`.
pub struct WebUser {
    pub session: Session,
}

impl FromRequestParts<SharedState> for WebUser {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut http::request::Parts, st: &SharedState) -> Result<Self, Response> {
        let session = match cookie(&parts.headers, COOKIE) {
            Some(id) => st.auth.session(id).await,
            None => None,
        };
        match session {
            Some(session) => Ok(WebUser { session }),
            None => Err(Redirect::to("/login").into_response()),
        }
    }
}

/// An error page (the message is escaped like everything else).
pub struct WebError(ApiError);

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> Self {
        WebError(e)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    user: Option<&'a str>,
    csrf: &'a str,
    status: u16,
    code: &'a str,
    message: &'a str,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let p = ErrorPage {
            user: None,
            csrf: "",
            status: self.0.status.as_u16(),
            code: self.0.code,
            message: &self.0.message,
        };
        (self.0.status, render(&p)).into_response()
    }
}

fn render(t: &impl Template) -> Html<String> {
    Html(t.render().unwrap_or_else(|e| format!("template error: {e}")))
}

fn who(s: &Session) -> String {
    s.scope.as_string()
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    user: Option<&'a str>,
    csrf: &'a str,
    error: Option<&'a str>,
}

/// The attributes of a cookie this server sets: `Secure` when it is served over https.
fn cookie_attrs(st: &SharedState, max_age: u32) -> String {
    let secure = if st.secure_cookies { "; Secure" } else { "" };
    format!("HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}")
}

/// The login page with a fresh CSRF token, also set as cookie `afb_login`.
fn login_page(st: &SharedState, status: StatusCode, error: Option<&str>) -> Response {
    let csrf = crate::api::auth::random_token();
    let c = format!("{LOGIN_COOKIE}={csrf}; {}", cookie_attrs(st, 3600));
    (status, [(header::SET_COOKIE, c)], render(&LoginPage { user: None, csrf: &csrf, error })).into_response()
}

async fn login_form(State(st): State<SharedState>) -> Response {
    login_page(&st, StatusCode::OK, None)
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
    #[serde(default)]
    csrf: String,
}

async fn login(
    State(st): State<SharedState>,
    headers: HeaderMap,
    crate::api::routes::ClientIp(ip): crate::api::routes::ClientIp,
    Form(f): Form<LoginForm>,
) -> Response {
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !crate::azure::credential::same_secret(expected, &f.csrf) {
        return login_page(&st, StatusCode::FORBIDDEN, Some("the login form expired; log in again"));
    }
    match crate::api::routes::check_token_limited(&st, ip, &f.token).await {
        Ok(scope) => {
            let (id, _) = st.auth.login(&f.token, scope);
            let c = format!("{COOKIE}={id}; {}", cookie_attrs(&st, 28800));
            (StatusCode::SEE_OTHER, [(header::SET_COOKIE, c), (header::LOCATION, "/".to_string())]).into_response()
        }
        Err(e) => {
            let mut r = login_page(&st, e.status, Some(&e.message));
            if let Some(s) = e.retry_after {
                r.headers_mut().insert(header::RETRY_AFTER, s.into());
            }
            r
        }
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

fn check_csrf(s: &Session, given: &str) -> Result<(), WebError> {
    if !crate::azure::credential::same_secret(given, &s.csrf) {
        return Err(WebError(ApiError::forbidden(
            "the form's CSRF token does not match this session; reload the page",
        )));
    }
    Ok(())
}

async fn logout(
    State(st): State<SharedState>,
    headers: HeaderMap,
    u: WebUser,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    check_csrf(&u.session, &f.csrf)?;
    if let Some(id) = cookie(&headers, COOKIE) {
        st.auth.logout(id);
    }
    let c = format!("{COOKIE}=; {}", cookie_attrs(&st, 0));
    Ok((StatusCode::SEE_OTHER, [(header::SET_COOKIE, c), (header::LOCATION, "/login".to_string())]).into_response())
}

async fn htmx(State(st): State<SharedState>) -> Response {
    match tokio::fs::read(st.static_dir.join("htmx.min.js")).await {
        Ok(b) => {
            ([(header::CONTENT_TYPE, "text/javascript"), (header::CACHE_CONTROL, "max-age=3600")], b).into_response()
        }
        Err(_) => (StatusCode::NOT_FOUND, "htmx is not installed: run npm ci").into_response(),
    }
}

/// A share row for templates.
struct ShareView {
    tenant: String,
    share: String,
    snapshots: usize,
    files: u64,
    bytes: String,
    /// `#id created_at` of the latest snapshot, or "never backed up" for a share registered without one.
    last: String,
    age: String,
    running: usize,
    failed: usize,
}

fn share_view(r: &ShareRow) -> ShareView {
    let last = match (r.last_snapshot_id, &r.last_snapshot_at) {
        (Some(id), Some(at)) => format!("#{id} {at}"),
        _ => "never backed up".to_string(),
    };
    ShareView {
        tenant: r.tenant_id.clone(),
        share: r.share_id.clone(),
        snapshots: r.snapshots,
        files: r.files,
        bytes: units::bytes(r.bytes),
        last,
        age: r.age_seconds.map_or("–".to_string(), units::age),
        running: 0,
        failed: 0,
    }
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage<'a> {
    user: Option<&'a str>,
    csrf: &'a str,
    tenants: usize,
    total_files: u64,
    total_bytes: String,
    rows: Vec<ShareView>,
    active_jobs: usize,
    /// The tenant "Add share" adds to: the session's own tenant, or empty for the operator, whose form
    /// asks for one (new tenants included).
    add_to_tenant: String,
}

async fn overview(State(st): State<SharedState>, u: WebUser) -> Result<Html<String>, WebError> {
    let rows = share_rows(&st, &u.session.scope, None).await?;
    let mut tenants: Vec<&str> = rows.iter().map(|r| r.tenant_id.as_str()).collect();
    tenants.dedup();
    let jobs = st.jobs.list(&u.session.scope, None, None, 1000).await?;
    let mut views: Vec<ShareView> = rows.iter().map(share_view).collect();
    for v in &mut views {
        let mine =
            jobs.iter().filter(|j| j.tenant.as_deref() == Some(&v.tenant) && j.share.as_deref() == Some(&v.share));
        for j in mine {
            match j.state {
                JobState::Running | JobState::Queued | JobState::Waiting => v.running += 1,
                JobState::Dead => v.failed += 1,
                _ => {}
            }
        }
    }
    let w = who(&u.session);
    Ok(render(&OverviewPage {
        user: Some(&w),
        csrf: &u.session.csrf,
        tenants: tenants.len(),
        total_files: rows.iter().map(|r| r.files).sum(),
        total_bytes: units::bytes(rows.iter().map(|r| r.bytes).sum()),
        rows: views,
        active_jobs: jobs.iter().filter(|j| !j.state.is_terminal()).count(),
        add_to_tenant: match &u.session.scope {
            crate::api::auth::Scope::Operator => String::new(),
            crate::api::auth::Scope::Tenant(t) => t.clone(),
        },
    }))
}

#[derive(Template)]
#[template(path = "tenant.html")]
struct TenantPage<'a> {
    user: Option<&'a str>,
    csrf: &'a str,
    tenant: &'a str,
    rows: Vec<ShareView>,
    /// Bytes of every share over time (empty when no share has a snapshot yet).
    growth_chart: String,
}

async fn tenant_page(
    State(st): State<SharedState>,
    u: WebUser,
    Path(t): Path<String>,
) -> Result<Html<String>, WebError> {
    u.session.scope.check_tenant(&t)?;
    let rows = share_rows(&st, &u.session.scope, Some(&t)).await?;
    if rows.is_empty() {
        return Err(ApiError::not_found(format!("tenant {t:?} not found")).into());
    }
    // One line per share: its bytes at each snapshot's time.
    let mut series = Vec::new();
    for r in rows.iter().filter(|r| r.snapshots > 0) {
        let ms = st.index.manifests(&r.tenant_id, &r.share_id).await?;
        let points = ms
            .iter()
            .map(|m| {
                let t = chart::unix_secs(&m.created_at);
                let hover = format!(
                    "{} snapshot #{} · {} · {} ({} bytes) · {} files",
                    r.share_id,
                    m.snapshot_id,
                    chart::when(t),
                    units::bytes(m.totals.bytes),
                    units::count(m.totals.bytes),
                    units::count(m.totals.files)
                );
                (t, m.totals.bytes as f64, hover)
            })
            .collect();
        series.push(chart::Series { name: r.share_id.clone(), points });
    }
    let growth_chart = if series.is_empty() {
        String::new()
    } else {
        chart::lines("bytes of each share over time", &series, chart::Measure::Bytes)
    };
    let w = who(&u.session);
    Ok(render(&TenantPage {
        user: Some(&w),
        csrf: &u.session.csrf,
        tenant: &t,
        rows: rows.iter().map(share_view).collect(),
        growth_chart,
    }))
}

struct SnapView {
    id: i64,
    created_at: String,
    files: u64,
    bytes: String,
    added: String,
    modified: String,
    deleted: String,
}

struct GrowthView {
    path: String,
    bytes: String,
    grew: String,
    files: i64,
}

#[derive(Template)]
#[template(path = "share.html")]
struct SharePage<'a> {
    user: Option<&'a str>,
    csrf: &'a str,
    tenant: &'a str,
    share: &'a str,
    growth_chart: String,
    change_chart: String,
    snaps: Vec<SnapView>,
    growth: Vec<GrowthView>,
    latest: i64,
    previous: i64,
    configured: bool,
    jobs: Vec<JobRow>,
    /// A job of this share is queued or running: the Start buttons are disabled and the jobs poll.
    busy: bool,
    has_snapshots: bool,
    /// The restore form's local target: what to type (`None`: this session may not restore locally).
    local_restore: Option<String>,
}

/// What the restore form asks for as a local target: an absolute path for the operator, a path below
/// the tenant's restore directory when the server has `--restore-root`, nothing otherwise.
fn local_restore_hint(st: &SharedState, s: &Session) -> Option<String> {
    match (&s.scope, &st.restore_root) {
        (crate::api::auth::Scope::Operator, _) => Some("/srv/restore (absolute)".into()),
        (crate::api::auth::Scope::Tenant(_), Some(_)) => Some("a path below your restore directory".into()),
        (crate::api::auth::Scope::Tenant(_), None) => None,
    }
}

/// The share page's jobs part (`share_jobs.html`): Start buttons and recent jobs. htmx polls it every
/// second while a job of the share is queued or running, so the buttons come back when it ends.
#[derive(Template)]
#[template(path = "share_jobs.html")]
struct ShareJobs<'a> {
    csrf: &'a str,
    tenant: &'a str,
    share: &'a str,
    configured: bool,
    jobs: Vec<JobRow>,
    busy: bool,
    has_snapshots: bool,
}

/// The recent jobs of a share (newest first) and whether one of them is queued or running.
async fn recent_jobs(
    st: &SharedState,
    scope: &crate::api::auth::Scope,
    t: &str,
    s: &str,
) -> Result<(Vec<JobRow>, bool), ApiError> {
    let jobs = st.jobs.list(scope, Some(t), Some(s), 10).await?;
    let busy = jobs.iter().any(|j| !j.state.is_terminal());
    Ok((jobs.iter().map(job_row).collect(), busy))
}

async fn share_jobs(
    State(st): State<SharedState>,
    u: WebUser,
    Path((t, s)): Path<(String, String)>,
) -> Result<Html<String>, WebError> {
    let (ms, settings) = share_state(&st, &u.session.scope, &t, &s).await?;
    let (jobs, busy) = recent_jobs(&st, &u.session.scope, &t, &s).await?;
    Ok(render(&ShareJobs {
        csrf: &u.session.csrf,
        tenant: &t,
        share: &s,
        configured: settings.configured,
        jobs,
        busy,
        has_snapshots: !ms.is_empty(),
    }))
}

async fn share_page(
    State(st): State<SharedState>,
    u: WebUser,
    Path((t, s)): Path<(String, String)>,
) -> Result<Html<String>, WebError> {
    let (ms, settings) = share_state(&st, &u.session.scope, &t, &s).await?;
    let (jobs, busy) = recent_jobs(&st, &u.session.scope, &t, &s).await?;
    if ms.is_empty() {
        let w = who(&u.session);
        return Ok(render(&SharePage {
            user: Some(&w),
            csrf: &u.session.csrf,
            tenant: &t,
            share: &s,
            growth_chart: String::new(),
            change_chart: String::new(),
            snaps: Vec::new(),
            growth: Vec::new(),
            latest: 0,
            previous: 0,
            configured: settings.configured,
            jobs,
            busy,
            has_snapshots: false,
            local_restore: local_restore_hint(&st, &u.session),
        }));
    }
    let pts = st.index.trends(&ms).await?;
    let growth_points: Vec<chart::GrowthPoint> = pts
        .iter()
        .map(|p| chart::GrowthPoint {
            snapshot_id: p.snapshot_id,
            t: chart::unix_secs(&p.created_at),
            bytes: p.bytes,
            files: p.files,
        })
        .collect();
    let growth_chart = chart::growth("bytes and files of the share over time", &growth_points);
    let change_points: Vec<chart::ChangePoint> = pts
        .iter()
        .skip(1)
        .map(|p| chart::ChangePoint {
            snapshot_id: p.snapshot_id,
            t: chart::unix_secs(&p.created_at),
            added: p.added.unwrap_or(0),
            modified: p.modified.unwrap_or(0),
            deleted: p.deleted.unwrap_or(0),
        })
        .collect();
    let change_chart = chart::changes("added, modified and deleted nodes per snapshot", &change_points);
    let opt = |v: Option<u64>| v.map_or("–".to_string(), |x| x.to_string());
    let snaps = pts
        .iter()
        .rev()
        .map(|p| SnapView {
            id: p.snapshot_id,
            created_at: p.created_at.clone(),
            files: p.files,
            bytes: units::bytes(p.bytes),
            added: opt(p.added),
            modified: opt(p.modified),
            deleted: opt(p.deleted),
        })
        .collect();
    let latest = ms.last().expect("non-empty");
    let previous = if ms.len() >= 2 { &ms[ms.len() - 2] } else { latest };
    let growth: Vec<Growth> =
        if ms.len() >= 2 { st.index.fastest_growing(previous, latest, 10).await? } else { Vec::new() };
    let growth = growth
        .iter()
        .map(|g| GrowthView {
            path: g.path.clone(),
            bytes: units::bytes(g.bytes),
            grew: units::bytes_delta(g.grew_bytes),
            files: g.grew_files,
        })
        .collect();
    let w = who(&u.session);
    Ok(render(&SharePage {
        user: Some(&w),
        csrf: &u.session.csrf,
        tenant: &t,
        share: &s,
        growth_chart,
        change_chart,
        snaps,
        growth,
        latest: latest.snapshot_id,
        previous: previous.snapshot_id,
        configured: settings.configured,
        jobs,
        busy,
        has_snapshots: true,
        local_restore: local_restore_hint(&st, &u.session),
    }))
}

#[derive(Deserialize)]
struct BrowseParams {
    path: Option<String>,
    cursor: Option<String>,
}

struct EntryView {
    name: String,
    is_dir: bool,
    href: String,
    size: String,
    files: String,
    mtime: String,
}

#[derive(Template)]
#[template(path = "browse.html")]
struct BrowsePage<'a> {
    user: Option<&'a str>,
    csrf: &'a str,
    tenant: &'a str,
    share: &'a str,
    snapshot: i64,
    path: String,
    crumbs: Vec<(String, String)>,
    total: String,
    total_files: u64,
    entry_count: usize,
    entries: Vec<EntryView>,
    more: Option<String>,
    /// The space map of this directory.
    map_href: String,
}

#[derive(Template)]
#[template(path = "browse_rows.html")]
struct BrowseRows {
    entries: Vec<EntryView>,
    more: Option<String>,
}

/// Percent-encodes everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`), for path
/// segments and query values alike.
fn enc(s: &str) -> String {
    const UNRESERVED: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
    percent_encoding::utf8_percent_encode(s, UNRESERVED).to_string()
}

async fn browse_page(
    State(st): State<SharedState>,
    u: WebUser,
    headers: HeaderMap,
    Path((t, s, id)): Path<(String, String, String)>,
    Query(q): Query<BrowseParams>,
) -> Result<Html<String>, WebError> {
    let m = snapshot_of(&st, &u.session.scope, &t, &s, &id).await?;
    let l = st.index.browse(&m, q.path.as_deref().unwrap_or("/"), q.cursor.as_deref(), 200).await?;
    let base = format!("/t/{}/s/{}/snap/{}", enc(&t), enc(&s), m.snapshot_id);
    let path = l.path.clone();
    let entries: Vec<EntryView> = l
        .entries
        .iter()
        .map(|e: &Entry| {
            let child = if path == "/" { format!("/{}", e.name) } else { format!("{path}/{}", e.name) };
            EntryView {
                name: e.name.clone(),
                is_dir: e.kind == "dir",
                href: format!("{base}?path={}", enc(&child)),
                size: units::bytes(e.size),
                files: e.subtree.map_or(String::new(), |t| t.files.to_string()),
                mtime: e.mtime.get(..19).unwrap_or(&e.mtime).replace('T', " "),
            }
        })
        .collect();
    let more = l.next_cursor.as_ref().map(|c| format!("{base}?path={}&cursor={}", enc(&path), enc(c)));
    // htmx's "Load more" asks for rows only; boosted navigation (HX-Boosted) wants the whole page.
    if headers.contains_key("hx-request") && !headers.contains_key("hx-boosted") {
        return Ok(render(&BrowseRows { entries, more }));
    }
    let mut crumbs = vec![("/".to_string(), format!("{base}?path=%2F"))];
    let mut acc = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        acc.push('/');
        acc.push_str(part);
        crumbs.push((part.to_string(), format!("{base}?path={}", enc(&acc))));
    }
    let map_href = format!("{base}/map?path={}", enc(&path));
    let w = who(&u.session);
    Ok(render(&BrowsePage {
        map_href,
        user: Some(&w),
        csrf: &u.session.csrf,
        tenant: &t,
        share: &s,
        snapshot: m.snapshot_id,
        path,
        crumbs,
        total: units::bytes(l.totals.bytes),
        total_files: l.totals.files,

        entry_count: l.entry_count,
        entries,
        more,
    }))
}

#[derive(Deserialize)]
struct DiffParams {
    from: Option<String>,
    to: Option<String>,
}

#[derive(Template)]
#[template(path = "diff.html")]
struct DiffPage<'a> {
    user: Option<&'a str>,
    csrf: &'a str,
    tenant: &'a str,
    share: &'a str,
    from: i64,
    to: i64,
    summary: Vec<(&'static str, u64, String)>,
    changes: Vec<ChangeRow>,
    truncated: bool,
}

async fn diff_page(
    State(st): State<SharedState>,
    u: WebUser,
    Path((t, s)): Path<(String, String)>,
    Query(q): Query<DiffParams>,
) -> Result<Html<String>, WebError> {
    let (Some(from), Some(to)) = (q.from.as_deref(), q.to.as_deref()) else {
        return Err(ApiError::bad_request("choose two snapshots (from and to)").into());
    };
    let old = snapshot_of(&st, &u.session.scope, &t, &s, from).await?;
    let new = snapshot_of(&st, &u.session.scope, &t, &s, to).await?;
    let d = st.index.diff(&old, &new, 500).await?;
    let sm = d.summary;
    let summary = vec![
        ("added", sm.added.count, units::bytes(sm.added.bytes)),
        ("deleted", sm.deleted.count, units::bytes(sm.deleted.bytes)),
        ("modified", sm.modified.count, units::bytes(sm.modified.bytes)),
        ("renamed", sm.renamed.count, units::bytes(sm.renamed.bytes)),
        ("moved", sm.moved.count, units::bytes(sm.moved.bytes)),
        ("unchanged", sm.unchanged.count, units::bytes(sm.unchanged.bytes)),
    ];
    let w = who(&u.session);
    Ok(render(&DiffPage {
        user: Some(&w),
        csrf: &u.session.csrf,
        tenant: &t,
        share: &s,
        from: d.from,
        to: d.to,
        summary,
        changes: d.changes,
        truncated: d.truncated,
    }))
}

/// The snapshot before `m` among the share's snapshots (ids may have gaps where snapshots were forgotten).
async fn previous_snapshot(st: &SharedState, m: &IndexManifest) -> Result<Option<IndexManifest>, ApiError> {
    let ms = st.index.manifests(&m.tenant_id, &m.share_id).await?;
    Ok(ms.into_iter().rfind(|x| x.snapshot_id < m.snapshot_id))
}

#[derive(Deserialize)]
struct MapParams {
    path: Option<String>,
    depth: Option<usize>,
}

/// A row of the table under the space map (the same directories, for keyboards and screen readers).
struct MapRow {
    name: String,
    href: String,
    bytes: String,
    exact: String,
    files: String,
    change: String,
}

#[derive(Template)]
#[template(path = "space_map.html")]
struct SpaceMapPage<'a> {
    user: Option<&'a str>,
    csrf: &'a str,
    tenant: &'a str,
    share: &'a str,
    snapshot: i64,
    previous: Option<i64>,
    path: String,
    crumbs: Vec<(String, String)>,
    browse_href: String,
    total: String,
    total_files: String,
    svg: String,
    legend: Vec<(&'static str, &'static str)>,
    depths: Vec<(usize, bool)>,
    rows: Vec<MapRow>,
    millis: String,
}

/// Size of the space map, in SVG units (and CSS pixels at 100%).
const MAP_W: f64 = 960.0;
const MAP_H: f64 = 540.0;

/// The space map of a snapshot (`?path=` a directory, `?depth=` 1 to 3 levels): directory totals from the
/// snapshot's summary only, coloured by growth since the snapshot before.
async fn space_map(
    State(st): State<SharedState>,
    u: WebUser,
    Path((t, s, id)): Path<(String, String, String)>,
    Query(q): Query<MapParams>,
) -> Result<Html<String>, WebError> {
    let started = std::time::Instant::now();
    let m = snapshot_of(&st, &u.session.scope, &t, &s, &id).await?;
    let sm = st.index.summary(&m).await?;
    let dm = &sm.dirs;
    let want = q.path.as_deref().unwrap_or("/");
    let Some(dir) = dm.resolve(want) else {
        return Err(ApiError::not_found(format!("no directory {want:?} in snapshot {}", m.snapshot_id)).into());
    };
    let prev = previous_snapshot(&st, &m).await?;
    let prev_sm = match &prev {
        Some(p) => Some(st.index.summary(p).await?),
        None => None,
    };
    let before = prev_sm.as_ref().map(|p| &p.dirs);
    let depth = q.depth.unwrap_or(2).clamp(1, 3);
    let area = treemap::Rect { x: 0.0, y: 0.0, w: MAP_W, h: MAP_H };
    let tiles = treemap::layout(dm, before, dir, depth, area);
    let path = dm.path(dir).unwrap_or_else(|| "/".into());
    let browse = format!("/t/{}/s/{}/snap/{}", enc(&t), enc(&s), m.snapshot_id);
    let href = |p: &str| format!("{browse}?path={}", enc(p));
    let title = format!("space map of {path} in snapshot #{}", m.snapshot_id);
    let svg = treemap::svg(&tiles, MAP_W, MAP_H, before.is_some(), &title, &href);
    // The 25 largest subdirectories, each subtree total looked up once (a root may have thousands).
    type Kid<'a> = (crate::index::node::NodeId, std::borrow::Cow<'a, str>, crate::index::dirmap::SubtreeTotals);
    let mut kids: Vec<Kid> = dm.subdirs(dir).map(|(_, id, name)| (id, name, dm.du(id).unwrap_or_default())).collect();
    let by_bytes = |a: &Kid, b: &Kid| b.2.bytes.cmp(&a.2.bytes).then(a.1.cmp(&b.1));
    if kids.len() > 25 {
        kids.select_nth_unstable_by(24, by_bytes);
        kids.truncate(25);
    }
    kids.sort_by(by_bytes);
    let rows = kids
        .iter()
        .map(|(id, name, now)| {
            let now = *now;
            let child = if path == "/" { format!("/{name}") } else { format!("{path}/{name}") };
            MapRow {
                name: name.to_string(),
                href: href(&child),
                bytes: units::bytes(now.bytes),
                exact: units::count(now.bytes),
                files: units::count(now.files),
                change: match (before, before.and_then(|b| b.du(*id))) {
                    (None, _) => String::new(),
                    (Some(_), None) => "new".into(),
                    (Some(_), Some(b)) => units::bytes_delta(now.bytes as i64 - b.bytes as i64),
                },
            }
        })
        .collect();
    let mut crumbs = vec![("/".to_string(), format!("{browse}/map?path=%2F&depth={depth}"))];
    let mut acc = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        acc.push('/');
        acc.push_str(part);
        crumbs.push((part.to_string(), format!("{browse}/map?path={}&depth={depth}", enc(&acc))));
    }
    let totals = dm.du(dir).unwrap_or_default();
    let w = who(&u.session);
    Ok(render(&SpaceMapPage {
        user: Some(&w),
        csrf: &u.session.csrf,
        tenant: &t,
        share: &s,
        snapshot: m.snapshot_id,
        previous: prev.as_ref().map(|p| p.snapshot_id),
        browse_href: href(&path),
        path,
        crumbs,
        total: units::bytes(totals.bytes),
        total_files: units::count(totals.files),
        svg,
        legend: treemap::LEGEND.to_vec(),
        depths: (1..=3).map(|d| (d, d == depth)).collect(),
        rows,
        millis: format!("{:.1}", started.elapsed().as_secs_f64() * 1000.0),
    }))
}

/// One directory in a list of the change view.
struct ChangeDirRow {
    path: String,
    href: String,
    /// The directory is listed from the old snapshot (it held deleted files and may be gone).
    gone: bool,
    bytes: String,
    exact: String,
    files: String,
    /// Bar length in px of 200: bytes relative to the list's largest.
    bar: String,
}

struct ChangeSection {
    id: &'static str,
    title: &'static str,
    colour: &'static str,
    rows: Vec<ChangeDirRow>,
}

#[derive(Template)]
#[template(path = "changes.html")]
struct ChangesPage<'a> {
    user: Option<&'a str>,
    csrf: &'a str,
    tenant: &'a str,
    share: &'a str,
    from: i64,
    to: i64,
    totals: Vec<(&'static str, String, String)>,
    directories: String,
    limit: usize,
    sections: Vec<ChangeSection>,
    millis: String,
}

/// Directories listed per kind of change.
const CHANGE_DIRS: usize = 15;

/// The change view: the directories with most added, deleted and modified bytes between two snapshots
/// (`?from=&to=`, default the last two).
async fn changes_page(
    State(st): State<SharedState>,
    u: WebUser,
    Path((t, s)): Path<(String, String)>,
    Query(q): Query<DiffParams>,
) -> Result<Html<String>, WebError> {
    let started = std::time::Instant::now();
    let (ms, _) = share_state(&st, &u.session.scope, &t, &s).await?;
    let Some(latest) = ms.last() else {
        return Err(ApiError::not_found(format!("share {t}/{s} has no snapshots yet")).into());
    };
    let default_from = if ms.len() >= 2 { ms[ms.len() - 2].snapshot_id } else { latest.snapshot_id };
    let from = q.from.clone().unwrap_or_else(|| default_from.to_string());
    let to = q.to.clone().unwrap_or_else(|| latest.snapshot_id.to_string());
    let old = snapshot_of(&st, &u.session.scope, &t, &s, &from).await?;
    let new = snapshot_of(&st, &u.session.scope, &t, &s, &to).await?;
    let c = st.index.change_map(&old, &new, CHANGE_DIRS).await?;
    let section = |id, title, colour, list: &[DirChange], pick: fn(&DirChange) -> (u64, u64)| {
        let max = list.iter().map(|d| pick(d).1).max().unwrap_or(0).max(1);
        ChangeSection {
            id,
            title,
            colour,
            rows: list
                .iter()
                .map(|d| {
                    let (files, bytes) = pick(d);
                    ChangeDirRow {
                        href: format!("/t/{}/s/{}/snap/{}?path={}", enc(&t), enc(&s), d.snapshot_id, enc(&d.path)),
                        path: d.path.clone(),
                        gone: d.snapshot_id != c.to,
                        bytes: units::bytes(bytes),
                        exact: units::count(bytes),
                        files: units::count(files),
                        bar: format!("{:.1}", (200.0 * bytes as f64 / max as f64).max(1.0)),
                    }
                })
                .collect(),
        }
    };
    let sections = vec![
        section("added", "Most bytes added", "#15803d", &c.added, |d| (d.added_files, d.added_bytes)),
        section("deleted", "Most bytes deleted", "#b91c1c", &c.deleted, |d| (d.deleted_files, d.deleted_bytes)),
        section("modified", "Most bytes modified", "#b45309", &c.modified, |d| (d.modified_files, d.modified_bytes)),
    ];
    let sm = c.summary;
    let totals = vec![
        ("added", units::count(sm.added.count), units::bytes(sm.added.bytes)),
        ("deleted", units::count(sm.deleted.count), units::bytes(sm.deleted.bytes)),
        ("modified", units::count(sm.modified.count), units::bytes(sm.modified.bytes)),
        (
            "moved or renamed",
            units::count(sm.moved.count + sm.renamed.count),
            units::bytes(sm.moved.bytes + sm.renamed.bytes),
        ),
    ];
    let w = who(&u.session);
    Ok(render(&ChangesPage {
        user: Some(&w),
        csrf: &u.session.csrf,
        tenant: &t,
        share: &s,
        from: c.from,
        to: c.to,
        totals,
        directories: units::count(c.directories as u64),
        limit: CHANGE_DIRS,
        sections,
        millis: format!("{:.1}", started.elapsed().as_secs_f64() * 1000.0),
    }))
}

#[derive(Deserialize)]
struct RestoreForm {
    csrf: String,
    snapshot: Option<String>,
    path: Option<String>,
    /// `original` (the share the backup came from) or `local` (a directory on the server).
    target: Option<String>,
    target_path: Option<String>,
    overwrite: Option<String>,
}

/// The restore form: a CSRF-checked POST that starts a restore job and shows it in the job monitor.
async fn restore(
    State(st): State<SharedState>,
    u: WebUser,
    Path((t, s)): Path<(String, String)>,
    Form(f): Form<RestoreForm>,
) -> Result<Response, WebError> {
    check_csrf(&u.session, &f.csrf)?;
    let target = match f.target.as_deref().unwrap_or("original") {
        "original" => serde_json::json!({"kind": "original"}),
        "local" => serde_json::json!({"kind": "local", "path": f.target_path.clone().unwrap_or_default()}),
        other => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                format!("target {other:?}: expected original or local"),
            )
            .into());
        }
    };
    let body = serde_json::json!({
        "kind": "restore",
        "snapshot": f.snapshot.filter(|x| !x.trim().is_empty()),
        "path": f.path,
        "target": target,
        "overwrite": f.overwrite.is_some(),
    });
    let v = start_job_for(&st, &u.session.scope, &t, &s, &body).await?;
    Ok(Redirect::to(&format!("/jobs/{}", v.job_id)).into_response())
}

#[derive(Deserialize)]
struct StartForm {
    csrf: String,
    kind: String,
}

/// Start a scan, backup or verify from the share page (CSRF-checked), then show it in the job monitor.
async fn start_job(
    State(st): State<SharedState>,
    u: WebUser,
    Path((t, s)): Path<(String, String)>,
    Form(f): Form<StartForm>,
) -> Result<Response, WebError> {
    check_csrf(&u.session, &f.csrf)?;
    if f.kind == "restore" {
        return Err(ApiError::bad_request("restores start from the restore form").into());
    }
    let v = start_job_for(&st, &u.session.scope, &t, &s, &serde_json::json!({"kind": f.kind})).await?;
    Ok(Redirect::to(&format!("/jobs/{}", v.job_id)).into_response())
}

#[derive(Deserialize)]
struct AddShareForm {
    csrf: String,
    tenant: String,
    share: String,
    connection_string: Option<String>,
    sas_url: Option<String>,
    azure_share: Option<String>,
}

/// "Add share" (tenant page, and the operator's overview): a CSRF-checked POST that registers a share
/// exactly as `POST /api/v1/tenants/{tenant}/shares` does, then shows the share's page.
async fn add_share(
    State(st): State<SharedState>,
    u: WebUser,
    Form(f): Form<AddShareForm>,
) -> Result<Response, WebError> {
    check_csrf(&u.session, &f.csrf)?;
    // Empty fields of the form are absent values.
    let given = |v: Option<String>| v.map(|x| x.trim().to_string()).filter(|x| !x.is_empty());
    let tenant = f.tenant.trim().to_string();
    let body = NewShare {
        share: f.share.trim().to_string(),
        connection_string: given(f.connection_string),
        sas_url: given(f.sas_url),
        azure_share: given(f.azure_share),
    };
    register_share(&st, &u.session.scope, &tenant, body).await?;
    Ok(Redirect::to(&format!("/t/{}/s/{}", enc(&tenant), enc(f.share.trim()))).into_response())
}

/// A job for templates.
struct JobRow {
    id: i64,
    kind: &'static str,
    state: &'static str,
    tenant: String,
    share: String,
    created: String,
    /// The phase in words, what was done (with totals when known), rates and times, the result.
    phase: String,
    amounts: String,
    timing: String,
    outcome: String,
    /// The progress bar's value in thousandths when a total is known (`None`: indeterminate).
    bar: Option<u32>,
    percent: String,
    error: String,
    active: bool,
}

/// Now, µs since the epoch.
fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_micros() as i64
}

fn job_row(v: &JobView) -> JobRow {
    let ended = v.state.is_terminal();
    let p = crate::jobs::progress::view(v.progress.as_ref(), ended, v.started_us, v.finished_us, now_us());
    let phase = match (v.state, p.phase.is_empty()) {
        (JobState::Queued, _) if v.attempts > 0 => "waiting to try again".to_string(),
        (JobState::Queued, _) => "waiting to start".to_string(),
        // A job that fanned out waits for its child jobs (scan parts, backup parts) and then commits.
        (JobState::Waiting, true) => "waiting for its parts to finish".to_string(),
        (JobState::Waiting, false) => format!("{}; waiting for its parts to finish", p.phase),
        (_, true) => String::new(),
        (_, false) => p.phase.clone(),
    };
    JobRow {
        id: v.job_id,
        kind: v.kind.as_str(),
        state: v.state.as_str(),
        tenant: v.tenant.clone().unwrap_or_default(),
        share: v.share.clone().unwrap_or_default(),
        // `2026-12-06 05:01:27 UTC` from RFC 3339 (the API keeps the full value).
        created: v
            .created_at
            .as_deref()
            .map_or(String::new(), |c| format!("{} UTC", c.get(..19).unwrap_or(c).replace('T', " "))),
        phase,
        amounts: p.amounts(),
        timing: p.timing(),
        outcome: p.outcome.clone(),
        bar: p.fraction.map(|f| (f * 1000.0).round() as u32),
        percent: p.fraction.map(units::percent).unwrap_or_default(),
        error: v.last_error.clone().unwrap_or_default(),
        active: !ended,
    }
}

#[derive(Template)]
#[template(path = "jobs.html")]
struct JobsPage<'a> {
    user: Option<&'a str>,
    csrf: &'a str,
    jobs: Vec<JobRow>,
}

async fn jobs_page(State(st): State<SharedState>, u: WebUser) -> Result<Html<String>, WebError> {
    let jobs = st.jobs.list(&u.session.scope, None, None, 200).await?;
    let w = who(&u.session);
    Ok(render(&JobsPage { user: Some(&w), csrf: &u.session.csrf, jobs: jobs.iter().map(job_row).collect() }))
}

#[derive(Template)]
#[template(path = "job.html")]
struct JobPage<'a> {
    user: Option<&'a str>,
    csrf: &'a str,
    j: JobRow,
    payload: String,
    /// Whether the job's share has snapshots (Verify needs one).
    has_snapshots: bool,
}

/// The live part of the job monitor: state, progress, error; Cancel while the job is unfinished; the
/// Start buttons of the job's share, disabled until it has ended.
#[derive(Template)]
#[template(path = "job_status.html")]
struct JobStatus<'a> {
    csrf: &'a str,
    j: JobRow,
    has_snapshots: bool,
}

async fn has_snapshots(st: &SharedState, v: &JobView) -> Result<bool, ApiError> {
    match (&v.tenant, &v.share) {
        (Some(t), Some(s)) => Ok(!st.index.manifests_or_none(t, s).await?.is_empty()),
        _ => Ok(false),
    }
}

fn parse_job(id: &str) -> Result<i64, ApiError> {
    id.parse::<i64>().ok().filter(|x| *x >= 1).ok_or_else(|| ApiError::not_found(format!("job {id:?} not found")))
}

async fn job_page(State(st): State<SharedState>, u: WebUser, Path(id): Path<String>) -> Result<Html<String>, WebError> {
    let v = st.jobs.get(&u.session.scope, parse_job(&id)?).await?;
    let w = who(&u.session);
    let payload = serde_json::to_string_pretty(&v.payload).unwrap_or_default();
    let has_snapshots = has_snapshots(&st, &v).await?;
    Ok(render(&JobPage { user: Some(&w), csrf: &u.session.csrf, j: job_row(&v), payload, has_snapshots }))
}

/// The live part of the job monitor; htmx polls it every second while the job is unfinished.
async fn job_status(
    State(st): State<SharedState>,
    u: WebUser,
    Path(id): Path<String>,
) -> Result<Html<String>, WebError> {
    let v = st.jobs.get(&u.session.scope, parse_job(&id)?).await?;
    let has_snapshots = has_snapshots(&st, &v).await?;
    Ok(render(&JobStatus { csrf: &u.session.csrf, j: job_row(&v), has_snapshots }))
}

async fn cancel_job(
    State(st): State<SharedState>,
    u: WebUser,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, WebError> {
    check_csrf(&u.session, &f.csrf)?;
    let id = parse_job(&id)?;
    st.jobs.cancel(&u.session.scope, id).await?;
    Ok(Redirect::to(&format!("/jobs/{id}")).into_response())
}
