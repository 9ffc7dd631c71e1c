//! A browser stand-in for the dashboard's HTTP tests: one session cookie, its CSRF token read
//! from the pages, no redirect followed (the tests check where each one points).

#![allow(dead_code)]

pub mod webdriver;

use reqwest::{StatusCode, header};

/// A logged-in (or not) browser against one server.
pub struct Browser {
    pub base: String,
    pub http: reqwest::Client,
    /// The `weft_session` cookie's value.
    pub session: Option<String>,
    /// The session's CSRF token, as the pages carry it.
    pub csrf: Option<String>,
}

/// The value of the first `name="csrf" value="..."` field of a page.
pub fn csrf_of(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    Some(html[at..].split('"').next()?.to_string())
}

/// The `Set-Cookie` header for cookie `name`, whole.
pub fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

/// The value part of a `Set-Cookie` header.
pub fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_string()
}

impl Browser {
    pub fn new(addr: std::net::SocketAddr) -> Browser {
        Browser {
            base: format!("http://{addr}"),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            session: None,
            csrf: None,
        }
    }

    /// Logs in with `token`: reads the login form, posts it with its CSRF cookie, keeps the
    /// session cookie, and reads the session's CSRF token from the overview.
    pub async fn login(addr: std::net::SocketAddr, token: &str) -> Browser {
        let mut browser = Browser::new(addr);
        let response = browser.try_login(token).await;
        if response.status() != StatusCode::SEE_OTHER {
            panic!("login refused: {}", response.text().await.unwrap());
        }
        let cookie = set_cookie(&response, "weft_session").expect("a session cookie");
        browser.session = Some(cookie_value(&cookie));
        let page = browser.get("/ui/reviews").await;
        let html = page.text().await.unwrap();
        browser.csrf = csrf_of(&html);
        assert!(browser.csrf.is_some(), "no CSRF token on the page: {html}");
        browser
    }

    /// Posts the login form with `token` (its CSRF cookie and field right).
    pub async fn try_login(&self, token: &str) -> reqwest::Response {
        let form = self.http.get(self.url("/ui/login")).send().await.unwrap();
        let cookie = set_cookie(&form, "weft_login_csrf").expect("a login CSRF cookie");
        let csrf = csrf_of(&form.text().await.unwrap()).expect("a CSRF field");
        self.http
            .post(self.url("/ui/login"))
            .header(
                header::COOKIE,
                format!("weft_login_csrf={}", cookie_value(&cookie)),
            )
            .form(&[("csrf", csrf.as_str()), ("token", token), ("next", "/ui")])
            .send()
            .await
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn with_cookie(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.session {
            Some(id) => request.header(header::COOKIE, format!("weft_session={id}")),
            None => request,
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.with_cookie(self.http.get(self.url(path)))
            .send()
            .await
            .unwrap()
    }

    /// A page's status and its HTML.
    pub async fn page(&self, path: &str) -> (StatusCode, String) {
        let response = self.get(path).await;
        (response.status(), response.text().await.unwrap())
    }

    /// Posts a form with the session's CSRF token added.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        if let Some(csrf) = &self.csrf {
            all.push(("csrf", csrf));
        }
        self.post_raw(path, &all).await
    }

    /// Posts a form as given (no CSRF token added).
    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.with_cookie(self.http.post(self.url(path)))
            .form(fields)
            .send()
            .await
            .unwrap()
    }
}

/// Where a redirect points.
pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(header::LOCATION)
        .expect("a Location header")
        .to_str()
        .unwrap()
        .to_string()
}
