//! Uploads a snapshot to Turbot Pipes (`--snapshot`, `--share`), as Powerpipe
//! does: `POST /api/v0/{user|org}/{handle}/workspace/{workspace}/snapshot`
//! with `{"data", "tags", "title", "visibility"}` and a bearer token. A
//! `--snapshot-location` that is a local directory gets the file instead.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;

/// One upload.
pub struct Upload {
    /// `pipes.turbot.com`, or a URL with a scheme (`http://127.0.0.1:8080`)
    pub host: String,
    /// the API token (never logged)
    pub token: String,
    /// `<identity>/<workspace>`, or a local directory
    pub location: Option<String>,
    /// the snapshot title
    pub title: String,
    /// `key=value` tags
    pub tags: Vec<String>,
    /// `workspace` or `anyone_with_link`
    pub visibility: String,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload")
            .field("host", &self.host)
            .field("token", &"<redacted>")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl Upload {
    fn base(&self) -> String {
        if self.host.starts_with("http://") || self.host.starts_with("https://") {
            self.host.trim_end_matches('/').to_string()
        } else {
            format!("https://{}", self.host.trim_end_matches('/'))
        }
    }

    fn web_base(&self) -> String {
        self.base()
    }

    /// Sends `snapshot` (the JSON document); returns where it can be seen.
    pub async fn send(&self, snapshot: &str) -> Result<String, String> {
        let location = self.location.clone().ok_or(
            "pass --snapshot-location <identity>/<workspace> (the user or organisation handle and the workspace)",
        )?;
        let local = std::path::Path::new(&location);
        if local.is_dir() {
            let name = format!("{}.pps", sanitize(&self.title));
            let path = local.join(name);
            std::fs::write(&path, snapshot).map_err(|e| format!("{}: {e}", path.display()))?;
            return Ok(path.display().to_string());
        }
        let (identity, workspace) = location
            .split_once('/')
            .filter(|(i, w)| !i.is_empty() && !w.is_empty() && !w.contains('/'))
            .ok_or_else(|| format!("--snapshot-location '{location}' is neither a directory nor <identity>/<workspace>"))?;
        let data: serde_json::Value =
            serde_json::from_str(snapshot).map_err(|e| format!("snapshot is not JSON: {e}"))?;
        let mut tags = serde_json::Map::new();
        for t in &self.tags {
            let (k, v) = t
                .split_once('=')
                .ok_or_else(|| format!("--snapshot-tag '{t}': expected key=value"))?;
            tags.insert(k.to_string(), serde_json::Value::String(v.to_string()));
        }
        let body = serde_json::json!({
            "data": data,
            "tags": tags,
            "title": self.title,
            "visibility": self.visibility,
        })
        .to_string();
        // The handle is a user's or an organisation's; try the user path first.
        let mut last = String::new();
        for kind in ["user", "org"] {
            let url = format!(
                "{}/api/v0/{kind}/{identity}/workspace/{workspace}/snapshot",
                self.base()
            );
            let (status, text) = post(&url, &self.token, body.clone()).await?;
            if (200..300).contains(&status) {
                let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                let id = v["id"]
                    .as_str()
                    .ok_or_else(|| format!("Pipes answered without a snapshot id: {text}"))?;
                return Ok(format!(
                    "{}/{kind}/{identity}/workspace/{workspace}/snapshot/{id}",
                    self.web_base()
                ));
            }
            last = format!(
                "HTTP {status} from {url}: {}",
                text.chars().take(300).collect::<String>()
            );
            if status != 404 {
                break;
            }
        }
        Err(last)
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

async fn post(url: &str, token: &str, body: String) -> Result<(u16, String), String> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| format!("no TLS root certificates: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, Full<Bytes>>(connector);
    let req = hyper::Request::post(url)
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .header(
            "User-Agent",
            concat!("steampipe-plugin-aws/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(std::time::Duration::from_secs(60), client.request(req))
        .await
        .map_err(|_| format!("no answer from {url} within 60 s"))?
        .map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status().as_u16();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}
