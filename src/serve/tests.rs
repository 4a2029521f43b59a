//! Tests for `serve`.
#![allow(clippy::unwrap_used)]

use super::*;
use tokio::io::AsyncWriteExt;

#[test]
fn parse_range_table() {
    use RangeDecision::*;
    let p = |start, end| Partial { start, end };
    let cases: &[(&str, u64, RangeDecision)] = &[
        ("bytes=0-99", 1000, p(0, 99)),
        ("bytes=0-0", 1000, p(0, 0)),
        ("bytes=900-", 1000, p(900, 999)),
        ("bytes=-100", 1000, p(900, 999)),
        ("bytes=-5000", 1000, p(0, 999)),
        ("bytes=990-2000", 1000, p(990, 999)),
        ("bytes=999-999", 1000, p(999, 999)),
        ("BYTES=1-2", 1000, p(1, 2)),
        ("bytes=1-2,", 1000, p(1, 2)),
        ("bytes= 1-2 ", 1000, p(1, 2)),
        ("bytes=0-99999999999999999999999", 1000, p(0, 999)),
        ("bytes=1000-", 1000, Unsatisfiable),
        ("bytes=1000-1001", 1000, Unsatisfiable),
        ("bytes=99999999999999999999999-", 1000, Unsatisfiable),
        ("bytes=-0", 1000, Unsatisfiable),
        ("bytes=0-", 0, Unsatisfiable),
        ("bytes=-1", 0, Unsatisfiable),
        ("bytes=0-1,5-6", 1000, Full),
        ("bytes=5-1", 1000, Full),
        ("bytes=abc", 1000, Full),
        ("bytes=-", 1000, Full),
        ("bytes=1-x", 1000, Full),
        ("bytes=+1-2", 1000, Full),
        ("bytes=", 1000, Full),
        ("items=0-1", 1000, Full),
        ("0-1", 1000, Full),
    ];
    for (value, total, want) in cases {
        assert_eq!(parse_range(value, *total), *want, "{value} of {total}");
    }
}

#[test]
fn relative_path_rejects_escapes() {
    assert_eq!(relative_path("/a/b.bin").unwrap(), PathBuf::from("a/b.bin"));
    assert_eq!(
        relative_path("//a/./b%20c").unwrap(),
        PathBuf::from("a/b c")
    );
    for bad in [
        "/../x",
        "/%2e%2e/x",
        "/a/..%2fx",
        "/a%5cb",
        "/a%00b",
        "/%ff",
    ] {
        assert_eq!(relative_path(bad), Err(StatusCode::BAD_REQUEST), "{bad}");
    }
    assert_eq!(relative_path("/"), Err(StatusCode::NOT_FOUND));
}

#[test]
fn if_range_uses_strong_comparison_and_exact_dates() {
    let mtime = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
    let v = Validators::new(1000, Some(mtime));
    assert!(v.if_range_holds(&v.etag.clone()));
    assert!(!v.if_range_holds(&format!("W/{}", v.etag)));
    assert!(!v.if_range_holds("\"other\""));
    assert!(v.if_range_holds(&httpdate::fmt_http_date(mtime)));
    let later = mtime + Duration::from_secs(1);
    assert!(!v.if_range_holds(&httpdate::fmt_http_date(later)));
    assert!(!v.if_range_holds("not a date"));
}

#[test]
fn etag_changes_with_size_and_mtime() {
    let t = UNIX_EPOCH + Duration::new(10, 5);
    let a = Validators::new(16, Some(t)).etag;
    assert_eq!(a, format!("\"10-{:x}\"", 10_000_000_005u64));
    assert_ne!(a, Validators::new(17, Some(t)).etag);
    assert_ne!(
        a,
        Validators::new(16, Some(t + Duration::from_nanos(1))).etag
    );
}

#[test]
fn pacer_spaces_sends_without_idle_credit() {
    let t0 = Instant::now();
    let mut pacer = Pacer::new(1000);
    assert_eq!(pacer.reserve(500, t0), t0);
    assert_eq!(pacer.reserve(500, t0), t0 + Duration::from_millis(500));
    assert_eq!(pacer.reserve(100, t0), t0 + Duration::from_secs(1));
    // After a long idle pause the next send goes now, with no burst owed.
    let later = t0 + Duration::from_secs(10);
    assert_eq!(pacer.reserve(1000, later), later);
    assert_eq!(pacer.reserve(1, later), later + Duration::from_secs(1));
}

fn body_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

struct TestServer {
    addr: std::net::SocketAddr,
    token: CancellationToken,
    task: tokio::task::JoinHandle<io::Result<()>>,
    // Holds the files until the test ends.
    dir: tempfile::TempDir,
    client: reqwest::Client,
}

impl TestServer {
    /// Serves `<tmp>/root`; `<tmp>/outside.txt` sits next to it.
    async fn start(limit_rate: Option<u64>) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("data.bin"), body_bytes(1000)).unwrap();
        std::fs::write(root.join("sub/empty.bin"), b"").unwrap();
        std::fs::write(dir.path().join("outside.txt"), b"secret").unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("../outside.txt", root.join("escape")).unwrap();
            std::os::unix::fs::symlink("data.bin", root.join("alias.bin")).unwrap();
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let token = CancellationToken::new();
        let task = tokio::spawn(serve(
            listener,
            root,
            ServeOptions { limit_rate },
            token.clone(),
        ));
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        TestServer {
            addr,
            token,
            task,
            dir,
            client,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self.client.get(self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    /// Sends a request target verbatim: reqwest would normalise `..`.
    async fn raw_status(&self, target: &str) -> u16 {
        let mut s = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let req = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).await.unwrap();
        let text = String::from_utf8_lossy(&resp);
        text.split(' ').nth(1).unwrap().parse().unwrap()
    }

    async fn stop(self) {
        self.token.cancel();
        self.task.await.unwrap().unwrap();
        drop(self.dir);
    }
}

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> &'a str {
    resp.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn get_sends_whole_file_with_validators() {
    let srv = TestServer::start(None).await;
    let resp = srv.get("/data.bin", &[]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-length"), "1000");
    assert_eq!(header(&resp, "accept-ranges"), "bytes");
    assert_eq!(header(&resp, "content-type"), "application/octet-stream");
    assert!(header(&resp, "etag").starts_with("\"3e8-"));
    httpdate::parse_http_date(header(&resp, "last-modified")).unwrap();
    assert_eq!(
        resp.bytes().await.unwrap().as_ref(),
        body_bytes(1000).as_slice()
    );
    srv.stop().await;
}

#[tokio::test]
async fn each_range_form_gets_206_with_exact_content_range() {
    let srv = TestServer::start(None).await;
    let body = body_bytes(1000);
    for (range, content_range, start, end) in [
        ("bytes=0-99", "bytes 0-99/1000", 0, 99),
        ("bytes=900-", "bytes 900-999/1000", 900, 999),
        ("bytes=-100", "bytes 900-999/1000", 900, 999),
        ("bytes=990-5000", "bytes 990-999/1000", 990, 999),
    ] {
        let resp = srv.get("/data.bin", &[("range", range)]).await;
        assert_eq!(resp.status(), 206, "{range}");
        assert_eq!(header(&resp, "content-range"), content_range);
        let len = (end - start + 1).to_string();
        assert_eq!(header(&resp, "content-length"), len);
        assert_eq!(resp.bytes().await.unwrap().as_ref(), &body[start..=end]);
    }
    srv.stop().await;
}

#[tokio::test]
async fn unsatisfiable_range_gets_416() {
    let srv = TestServer::start(None).await;
    let resp = srv.get("/data.bin", &[("range", "bytes=1000-")]).await;
    assert_eq!(resp.status(), 416);
    assert_eq!(header(&resp, "content-range"), "bytes */1000");
    let resp = srv.get("/sub/empty.bin", &[("range", "bytes=0-")]).await;
    assert_eq!(resp.status(), 416);
    assert_eq!(header(&resp, "content-range"), "bytes */0");
    srv.stop().await;
}

#[tokio::test]
async fn multiple_or_malformed_ranges_get_the_whole_file() {
    let srv = TestServer::start(None).await;
    for range in ["bytes=0-1,5-6", "bytes=x-y", "lines=1-2"] {
        let resp = srv.get("/data.bin", &[("range", range)]).await;
        assert_eq!(resp.status(), 200, "{range}");
        assert_eq!(resp.bytes().await.unwrap().len(), 1000);
    }
    srv.stop().await;
}

#[tokio::test]
async fn if_range_match_gives_206_and_mismatch_gives_200() {
    let srv = TestServer::start(None).await;
    let first = srv.get("/data.bin", &[]).await;
    let etag = header(&first, "etag").to_owned();
    let date = header(&first, "last-modified").to_owned();
    drop(first);

    for validator in [etag.as_str(), date.as_str()] {
        let resp = srv
            .get(
                "/data.bin",
                &[("range", "bytes=10-"), ("if-range", validator)],
            )
            .await;
        assert_eq!(resp.status(), 206, "{validator}");
        assert_eq!(header(&resp, "content-range"), "bytes 10-999/1000");
    }
    let weak = format!("W/{etag}");
    for validator in [
        "\"0-0\"",
        weak.as_str(),
        "Thu, 01 Jan 1970 00:00:00 GMT",
        "garbage",
    ] {
        let resp = srv
            .get(
                "/data.bin",
                &[("range", "bytes=10-"), ("if-range", validator)],
            )
            .await;
        assert_eq!(resp.status(), 200, "{validator}");
        assert!(resp.headers().get("content-range").is_none());
        assert_eq!(resp.bytes().await.unwrap().len(), 1000);
    }
    srv.stop().await;
}

#[tokio::test]
async fn head_sends_headers_without_body() {
    let srv = TestServer::start(None).await;
    let resp = srv.client.head(srv.url("/data.bin")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-length"), "1000");
    assert!(resp.headers().contains_key("etag"));
    assert!(resp.bytes().await.unwrap().is_empty());
    let resp = srv
        .client
        .head(srv.url("/data.bin"))
        .header("range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 206);
    assert_eq!(header(&resp, "content-length"), "10");
    srv.stop().await;
}

#[tokio::test]
async fn traversal_attempts_are_refused() {
    let srv = TestServer::start(None).await;
    for target in [
        "/../Cargo.toml",
        "/../outside.txt",
        "/%2e%2e/outside.txt",
        "/sub/..%2F..%2Foutside.txt",
        "/sub%5c..%5c..%5coutside.txt",
        "/data.bin%00",
    ] {
        assert_eq!(srv.raw_status(target).await, 400, "{target}");
    }
    #[cfg(unix)]
    {
        assert_eq!(srv.raw_status("/escape").await, 404);
        assert_eq!(srv.raw_status("/alias.bin").await, 200);
    }
    srv.stop().await;
}

#[tokio::test]
async fn missing_files_and_directories_get_404() {
    let srv = TestServer::start(None).await;
    for path in ["/nope.bin", "/", "/sub", "/sub/", "/data.bin/x"] {
        let resp = srv.get(path, &[]).await;
        assert_eq!(resp.status(), 404, "{path}");
    }
    let resp = srv.client.post(srv.url("/data.bin")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    srv.stop().await;
}

#[tokio::test]
async fn rate_limit_paces_the_body() {
    // 1000 bytes at 2000 B/s in 125-byte slices: the first goes at once,
    // the other seven wait 62.5 ms each.
    let srv = TestServer::start(Some(2000)).await;
    let started = std::time::Instant::now();
    let resp = srv.get("/data.bin", &[]).await;
    assert_eq!(resp.bytes().await.unwrap().len(), 1000);
    assert!(started.elapsed() >= Duration::from_millis(430));
    srv.stop().await;
}

#[tokio::test]
async fn shutdown_ends_a_slow_body_in_flight() {
    let srv = TestServer::start(Some(10)).await;
    let mut resp = srv.get("/data.bin", &[]).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.chunk().await.unwrap().is_some());
    srv.token.cancel();
    // serve() returns although 990 bytes at 10 B/s are still owed.
    srv.task.await.unwrap().unwrap();
    assert!(resp.chunk().await.is_err());
}

#[tokio::test]
async fn missing_root_is_an_error_naming_it() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = serve(
        listener,
        PathBuf::from("/definitely/not/here"),
        ServeOptions::default(),
        CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert!(err.to_string().contains("/definitely/not/here"));
}
