//! Registry credentials and authentication challenges.
//!
//! Owns the docker `config.json` lookup (the full `host[:port]/namespace/repo` key,
//! then shorter prefixes, then `host[:port]`; we also tolerate `https://` prefixes and
//! trailing slashes in keys) and the parsing of `WWW-Authenticate` challenges. Credentials
//! never appear in logs: their `Debug` hides the password.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use base64::Engine as _;
use serde::Deserialize;

use super::error::ErrorKind;

/// A user name and password for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name (may be empty: `:pass` is accepted like the reference does).
    pub username: String,
    /// Password or token (may be empty).
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// The `Authorization: Basic ...` value.
    pub(crate) fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// Normalises a config.json key: no scheme, no trailing slash, lower-case host.
fn normalise_key(key: &str) -> String {
    let key = key
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    match key.split_once('/') {
        Some((host, rest)) => format!("{}/{}", host.to_ascii_lowercase(), rest),
        None => key.to_ascii_lowercase(),
    }
}

/// The keys tried for `host/repository`, longest first.
pub(crate) fn lookup_keys(host: &str, repository: &str) -> Vec<String> {
    let host = host.to_ascii_lowercase();
    let mut keys = Vec::new();
    let mut path = format!("{host}/{}", repository.trim_matches('/'));
    loop {
        keys.push(path.clone());
        match path.rsplit_once('/') {
            Some((shorter, _)) => path = shorter.to_string(),
            None => break,
        }
    }
    if keys.last() != Some(&host) {
        keys.push(host.clone());
    }
    // Docker Hub's credentials live under the legacy index key.
    if host == "docker.io" || host == "registry-1.docker.io" {
        keys.push("index.docker.io/v1".to_string());
    }
    keys
}

/// Reads `path` and returns the credentials for `host/repository`, if any entry matches.
pub fn credentials_for(
    path: &Path,
    host: &str,
    repository: &str,
) -> Result<Option<Credentials>, ErrorKind> {
    let fail = |reason: String| ErrorKind::Credentials {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let config: DockerConfig = serde_json::from_slice(&text)
        .map_err(|e| fail(format!("not a docker config.json: {e}")))?;
    let entries: BTreeMap<String, AuthEntry> = config
        .auths
        .into_iter()
        .map(|(key, entry)| (normalise_key(&key), entry))
        .collect();
    for key in lookup_keys(host, repository) {
        let Some(entry) = entries.get(&key) else {
            continue;
        };
        return decode_entry(entry)
            .map(Some)
            .map_err(|reason| fail(format!("entry `{key}`: {reason}")));
    }
    Ok(None)
}

fn decode_entry(entry: &AuthEntry) -> Result<Credentials, String> {
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|e| format!("`auth` is not base64: {e}"))?;
        let raw = String::from_utf8(raw).map_err(|_| "`auth` is not UTF-8".to_string())?;
        let (username, password) = raw
            .split_once(':')
            .ok_or_else(|| "`auth` is not `user:password`".to_string())?;
        return Ok(Credentials {
            username: username.to_string(),
            password: password.to_string(),
        });
    }
    match (&entry.username, &entry.password) {
        (Some(username), Some(password)) => Ok(Credentials {
            username: username.clone(),
            password: password.clone(),
        }),
        _ => Err("neither `auth` nor `username` and `password`".to_string()),
    }
}

/// An `Authorization` header value (a token or Basic credentials); never shown by `Debug`.
#[derive(Clone, Default)]
pub struct AuthHeader(pub(crate) String);

impl fmt::Debug for AuthHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthHeader(<redacted>)")
    }
}

/// The `Authorization` value shared by the scrapes of one `Scraper`.
pub(crate) type SharedAuth = std::sync::Arc<std::sync::RwLock<Option<AuthHeader>>>;

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// Token auth: ask `realm` for a token.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    /// Basic auth: send the credentials with each request.
    Basic,
}

/// Parses the first challenge of a `WWW-Authenticate` value; `None` for unknown schemes.
pub(crate) fn parse_challenge(value: &str) -> Option<Challenge> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(char::is_whitespace).unwrap_or((value, ""));
    let params = parse_params(rest);
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    Some(Challenge::Bearer {
        realm: params.get("realm")?.clone(),
        service: params.get("service").cloned(),
        scope: params.get("scope").cloned(),
    })
}

/// Parses `key="value", key=value` pairs; commas inside quotes belong to the value.
fn parse_params(input: &str) -> BTreeMap<String, String> {
    let mut params = BTreeMap::new();
    let mut chars = input.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace() || *c == ',').is_some() {}
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.trim().is_empty() || chars.next() != Some('=') {
            return params;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value.extend(std::iter::from_fn(|| chars.next_if(|c| *c != ',')));
        }
        params.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
    }
}

/// The token endpoint's answer: registries use either field name.
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

impl TokenResponse {
    pub(crate) fn into_token(self) -> Option<String> {
        self.token
            .filter(|t| !t.is_empty())
            .or(self.access_token.filter(|t| !t.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_config(json: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), json).unwrap();
        file
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn lookup_prefers_the_longest_namespaced_key() {
        let json = format!(
            r#"{{"auths": {{
                "mirror.example:5000": {{"auth": "{}"}},
                "mirror.example:5000/ocp": {{"auth": "{}"}},
                "https://mirror.example:5000/ocp/release/": {{"auth": "{}"}}
            }}}}"#,
            b64("host:h"),
            b64("ns:n"),
            b64("full:f")
        );
        let file = write_config(&json);
        let found = |repo: &str| {
            credentials_for(file.path(), "mirror.example:5000", repo)
                .unwrap()
                .map(|c| c.username)
        };
        assert_eq!(found("ocp/release").as_deref(), Some("full"));
        assert_eq!(found("ocp/other").as_deref(), Some("ns"));
        assert_eq!(found("else/release").as_deref(), Some("host"));
        assert_eq!(
            credentials_for(file.path(), "other.example", "ocp/release").unwrap(),
            None
        );
    }

    #[test]
    fn username_password_fields_and_empty_halves() {
        let json = format!(
            r#"{{"auths": {{"a.example": {{"username": "u", "password": "p"}},
                           "b.example": {{"auth": "{}"}}}}}}"#,
            b64(":token")
        );
        let file = write_config(&json);
        let a = credentials_for(file.path(), "a.example", "x/y")
            .unwrap()
            .unwrap();
        assert_eq!((a.username.as_str(), a.password.as_str()), ("u", "p"));
        let b = credentials_for(file.path(), "B.example", "x")
            .unwrap()
            .unwrap();
        assert_eq!((b.username.as_str(), b.password.as_str()), ("", "token"));
    }

    #[test]
    fn bad_files_name_the_file_and_entry() {
        let file = write_config(r#"{"auths": {"a.example": {"auth": "%%%"}}}"#);
        let err = credentials_for(file.path(), "a.example", "r")
            .unwrap_err()
            .to_string();
        assert!(err.contains(&file.path().display().to_string()), "{err}");
        assert!(err.contains("a.example") && err.contains("base64"), "{err}");
        let file = write_config("not json");
        assert!(credentials_for(file.path(), "a", "r").is_err());
    }

    #[test]
    fn debug_never_shows_the_password() {
        let creds = Credentials {
            username: "me".into(),
            password: "s3cret".into(),
        };
        let shown = format!("{creds:?}");
        assert!(!shown.contains("s3cret") && shown.contains("me"), "{shown}");
        let header = AuthHeader(creds.basic_header());
        assert_eq!(format!("{header:?}"), "AuthHeader(<redacted>)");
    }

    #[test]
    fn challenges_parse_with_quoted_commas() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="x""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge("Bearer service=x"), None);
    }

    #[test]
    fn docker_hub_uses_the_legacy_index_key() {
        let keys = lookup_keys("docker.io", "library/busybox");
        assert_eq!(
            keys,
            [
                "docker.io/library/busybox",
                "docker.io/library",
                "docker.io",
                "index.docker.io/v1"
            ]
        );
    }
}
