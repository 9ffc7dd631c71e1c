//! Just enough of the W3C WebDriver protocol to drive Debian's headless Chromium through
//! `chromedriver` on loopback: sessions, navigation, elements, text, and screenshots.
//!
//! Written over the reqwest client the tests already build, rather than with fantoccini: the
//! dozen JSON calls below are the whole need, and fantoccini would bring its own hyper client
//! and a TLS stack for a driver that only ever listens on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

/// The W3C name of an element reference in a JSON answer.
const ELEMENT: &str = "element-6066-11e4-a6c3-ae89-f6ad8ef34a4e";

/// The browser: `WEFT_CHROMIUM`, else where Debian installs it.
pub fn chromium() -> String {
    std::env::var("WEFT_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// Its driver: `WEFT_CHROMEDRIVER`, else where Debian's `chromium-driver` installs it.
pub fn chromedriver() -> String {
    std::env::var("WEFT_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into())
}

/// Why the browser tests cannot run here, if they cannot: `None` when both binaries exist.
pub fn missing_browser() -> Option<String> {
    let missing: Vec<String> = [chromium(), chromedriver()]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "{} not installed (apt-get install chromium chromium-driver)",
            missing.join(" and ")
        )
    })
}

/// Whether the browser tests can run; when they cannot, prints why and returns `false`, except
/// under `CI=true` (where `.ci/run` installs the browser), where it fails the test.
pub fn browser_available(test: &str) -> bool {
    match missing_browser() {
        None => true,
        Some(reason) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("the browser tests must run under CI=true, but {reason}")
        }
        Some(reason) => {
            println!("skipping {test}: {reason}");
            false
        }
    }
}

/// A running `chromedriver` on a loopback port, killed on drop.
pub struct Driver {
    child: Child,
    pub url: String,
    http: reqwest::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port (bound, then released for chromedriver to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Driver {
    /// Starts chromedriver and waits (10 s at most) until it answers `/status` ready.
    pub async fn start() -> Driver {
        let port = free_port();
        let child = Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let ready = driver
                .http
                .get(format!("{}/status", driver.url))
                .send()
                .await
                .ok()
                .map(|r| r.json::<Value>());
            if let Some(body) = ready
                && let Ok(body) = body.await
                && body["value"]["ready"] == true
            {
                return driver;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver did not get ready in 10 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Opens a headless Chromium with a fresh profile in `profile`.
    pub async fn session(&self, profile: &Path) -> Session {
        // As root Chromium needs --no-sandbox; the network here refuses Chromium's own
        // background connections, so they are turned off rather than left to time out.
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,900",
        ]
        .into_iter()
        .map(str::to_string)
        .chain([format!("--user-data-dir={}", profile.display())])
        .collect::<Vec<_>>();
        let body = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium(), "args": args },
        } } });
        let answer: Value = self
            .http
            .post(format!("{}/session", self.url))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {answer}"))
            .to_string();
        Session {
            base: format!("{}/session/{id}", self.url),
            http: self.http.clone(),
        }
    }
}

/// One browser window.
pub struct Session {
    base: String,
    http: reqwest::Client,
}

/// An element of the current page.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Session {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        match self.try_call(method, path, body).await {
            Ok(value) => value,
            Err(error) => panic!("WebDriver {path}: {error}"),
        }
    }

    /// A call, with WebDriver's error code and message as the error.
    async fn try_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let request = self.http.request(method, format!("{}{path}", self.base));
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        if let Some(error) = answer["value"]["error"].as_str() {
            return Err(format!("{error}: {}", answer["value"]["message"]));
        }
        Ok(answer["value"].clone())
    }

    /// Loads `url` and waits for the document to load.
    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    /// The current URL.
    pub async fn current_url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Waits up to 10 s until the current URL passes `check` (a click that submits a form may
    /// return before the next page is there).
    pub async fn wait_for_url(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let url = self.current_url().await;
            if check(&url) {
                return url;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "not within 10 s: {what}; the URL is {url}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The elements matching a CSS selector now.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let found = self
            .call(
                reqwest::Method::POST,
                "/elements",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        found
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                // The W3C key, or the one value of the reference object.
                let id = e
                    .get(ELEMENT)
                    .or_else(|| e.as_object().and_then(|o| o.values().next()));
                Element(id.and_then(Value::as_str).unwrap().to_string())
            })
            .collect()
    }

    /// The first element matching `css`, waiting up to 10 s for it to appear.
    pub async fn find(&self, css: &str) -> Element {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(element) = self.find_all(css).await.into_iter().next() {
                return element;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no element `{css}` in 10 s on {}",
                self.current_url().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs `action` on the first element matching `css`, finding it again if htmx swapped it
    /// out in between (a live part refreshes when any workflow commits a step).
    async fn on_element(&self, css: &str, action: &str, body: Value) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let element = self.find(css).await;
            let path = format!("/element/{}/{action}", element.0);
            match self
                .try_call(reqwest::Method::POST, &path, Some(body.clone()))
                .await
            {
                Ok(_) => return,
                Err(error) if error.starts_with("stale element reference") => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "`{css}` stays stale"
                    );
                }
                Err(error) => panic!("WebDriver {path}: {error}"),
            }
        }
    }

    /// Clicks the first element matching `css` (waiting for it to appear).
    pub async fn click_on(&self, css: &str) {
        self.on_element(css, "click", json!({})).await;
    }

    /// Replaces the text of the first input or textarea matching `css`.
    pub async fn type_in(&self, css: &str, text: &str) {
        self.on_element(css, "clear", json!({})).await;
        self.on_element(css, "value", json!({ "text": text })).await;
    }

    /// The rendered text of the first element matching `css` (waiting for it to appear). A
    /// live part that htmx swaps between finding the element and reading it is found again.
    pub async fn text(&self, css: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let element = self.find(css).await;
            let path = format!("/element/{}/text", element.0);
            match self.try_call(reqwest::Method::GET, &path, None).await {
                Ok(text) => return text.as_str().unwrap_or("").to_string(),
                Err(error) if error.starts_with("stale element reference") => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "`{css}` stays stale"
                    );
                }
                Err(error) => panic!("WebDriver {path}: {error}"),
            }
        }
    }

    /// The page's HTML as the browser holds it now.
    pub async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Runs `script` (a function body; `return` gives the answer) in the page, and returns
    /// its answer as JSON.
    pub async fn execute(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    /// Waits up to 10 s until `check` holds on the page's HTML.
    pub async fn wait_for(&self, what: &str, check: impl Fn(&str) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let html = self.source().await;
            if check(&html) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "not within 10 s: {what}; the page is:\n{html}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Saves a PNG of the window as `dir/name.png`.
    pub async fn screenshot(&self, dir: &Path, name: &str) -> PathBuf {
        let data = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64_decode(data.as_str().unwrap());
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// Closes the window and its browser.
    pub async fn close(self) {
        self.call(reqwest::Method::DELETE, "", None).await;
    }
}

/// Standard base64 (what WebDriver screenshots are in).
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let clean: Vec<u8> = text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, c)| n | (value(*c) << (18 - 6 * i)));
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

#[test]
fn base64_decodes_what_browsers_send() {
    assert_eq!(base64_decode("aGVsbG8="), b"hello");
    assert_eq!(base64_decode("aGk="), b"hi");
    assert_eq!(base64_decode("YWJj"), b"abc");
}
