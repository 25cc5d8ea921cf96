//! Authorization of registry requests: which URLs carry credentials, and the answer to a
//! 401 (a Bearer token from the challenge's realm, or Basic credentials).
//!
//! Credentials and tokens go to the registry origin (scheme, host, port) and nowhere else:
//! a blob redirected to storage on another origin is fetched without them, as are a
//! `Link`, upload `Location` or token realm elsewhere, and only the registry's own 401 is
//! answered. Since the origin includes the scheme, Basic credentials only travel over plain
//! http when the registry itself was configured as `http://`.

use reqwest::header::{ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use url::Url;

use super::auth::{lookup_keys, parse_challenge, AuthHeader, Challenge, TokenResponse};
use super::client::Session;
use super::error::{ErrorKind, Limited, RegistryError, RegistryErrorBody};

impl Session {
    /// Sends an authorized request; on 401 re-authenticates once and sends again.
    pub(super) async fn send(
        &self,
        method: Method,
        url: Url,
        accept: Option<&str>,
        item: &str,
    ) -> Result<Response, RegistryError> {
        self.send_with(method, url, item, |request| match accept {
            Some(accept) => request.header(ACCEPT, accept),
            None => request,
        })
        .await
    }

    /// [`Self::send`] with headers and body set by `customize` (called once per attempt).
    pub(super) async fn send_with(
        &self,
        method: Method,
        url: Url,
        item: &str,
        customize: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let mut reauthenticated = false;
        loop {
            let authorization = self.client.authorization.read().expect("lock").clone();
            let response = self
                .execute(item, &method, &url, |to| {
                    let mut request =
                        customize(self.client.http.request(method.clone(), to.clone()));
                    if let Some(AuthHeader(value)) = &authorization {
                        if self.target().same_origin(to) {
                            request = request.header(AUTHORIZATION, value);
                        }
                    }
                    request
                })
                .await?;
            // Only the registry's own challenge is answered: a 401 from elsewhere (storage
            // a blob was redirected to) must not make us fetch tokens where it says.
            if response.status() != StatusCode::UNAUTHORIZED
                || !self.target().same_origin(response.url())
            {
                return Ok(response);
            }
            if reauthenticated {
                let errors = self.read_error_body(response).await;
                let reason = self.refusal("the registry refused the request");
                return Err(self.unauthorized(item, &reason, errors));
            }
            reauthenticated = true;
            self.authenticate(&response, item).await?;
        }
    }

    fn unauthorized(
        &self,
        item: &str,
        reason: &str,
        errors: Vec<RegistryErrorBody>,
    ) -> RegistryError {
        self.error(
            item,
            ErrorKind::Unauthorized {
                reason: reason.to_string(),
                errors,
            },
        )
    }

    /// Says whether credentials were sent, and if not, which config.json keys were tried.
    fn refusal(&self, what: &str) -> String {
        let target = self.target();
        match &self.credentials {
            Some(c) => format!("{what} with the credentials of user {:?}", c.username),
            None => format!(
                "{what} to an anonymous client; no credentials entry matched (keys tried: {})",
                lookup_keys(&target.host, &target.repository).join(", ")
            ),
        }
    }

    /// Turns a non-success response into an error carrying the registry's error body.
    pub(crate) async fn status_error(&self, response: Response, item: &str) -> RegistryError {
        let status = response.status().as_u16();
        let errors = self.read_error_body(response).await;
        self.error(item, ErrorKind::Status { status, errors })
    }

    /// Answers a 401 challenge: fetch a token, or set Basic credentials.
    async fn authenticate(&self, response: &Response, item: &str) -> Result<(), RegistryError> {
        let challenge = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_challenge);
        let value = match challenge {
            None => {
                return Err(self.unauthorized(
                    item,
                    "401 without a usable WWW-Authenticate",
                    vec![],
                ))
            }
            Some(Challenge::Basic) => match &self.credentials {
                Some(credentials) => credentials.basic_header(),
                None => {
                    return Err(self.unauthorized(
                        item,
                        "the registry asks for Basic auth and no credentials are configured",
                        vec![],
                    ))
                }
            },
            Some(Challenge::Bearer { realm, service, .. }) => {
                format!(
                    "Bearer {}",
                    self.fetch_token(&realm, service.as_deref(), item).await?
                )
            }
        };
        *self.client.authorization.write().expect("lock") = Some(AuthHeader(value));
        Ok(())
    }

    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        item: &str,
    ) -> Result<String, RegistryError> {
        let mut url = Url::parse(realm)
            .map_err(|e| self.protocol(item, format!("token realm {realm:?} is not a URL: {e}")))?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            query.append_pair(
                "scope",
                &format!(
                    "repository:{}:{}",
                    self.target().repository,
                    self.client.access.actions()
                ),
            );
        }
        if self.credentials.is_some() && !self.target().same_origin(&url) {
            tracing::debug!(%item, %realm, "token realm is on another origin; asking it anonymously");
        }
        let response = self
            .execute(&format!("token from {realm}"), &Method::GET, &url, |to| {
                let request = self.client.http.get(to.clone());
                match &self.credentials {
                    Some(c) if self.target().same_origin(to) => {
                        request.basic_auth(&c.username, Some(&c.password))
                    }
                    _ => request,
                }
            })
            .await?;
        if !response.status().is_success() {
            let status = response.status();
            let errors = self.read_error_body(response).await;
            let what = format!("token endpoint {realm} answered {status}");
            let reason = if self.credentials.is_some() && !self.target().same_origin(&url) {
                format!("{what}; it is on another origin than the registry, so it was asked without credentials")
            } else {
                self.refusal(&what)
            };
            return Err(self.unauthorized(item, &reason, errors));
        }
        let body = self
            .read_limited(
                response,
                item,
                Limited::Token,
                self.limits().max_token_bytes,
            )
            .await?;
        serde_json::from_slice::<TokenResponse>(&body)
            .ok()
            .and_then(TokenResponse::into_token)
            .ok_or_else(|| self.unauthorized(item, "the token endpoint returned no token", vec![]))
    }
}
