//! Credentials. `--netrc` / `--netrc-file` send basic
//! auth to the hosts the file names and nowhere else: not to another host,
//! not after a redirect to another origin (even one the file also covers),
//! and never over a URL's own `user:pass@` or an explicit Authorization
//! header. `--header 'Authorization: …'` likewise stays at its origin.
//! `127.0.0.1` and `localhost` on one test server are two hosts.

use std::path::Path;

use crate::cli_config::with_env;
use crate::support::bodies::{assert_file_eq, body};
use crate::support::cli::{Outcome, Sandbox};
use crate::support::server::{LoggedRequest, TestServer};

/// base64("alice:s3cret").
const ALICE: &str = "Basic YWxpY2U6czNjcmV0";
/// base64("anon:guest").
const ANON: &str = "Basic YW5vbjpndWVzdA==";

fn get_with_netrc(sb: &Sandbox, netrc: &str, urls: &[String], extra: &[&str]) -> Outcome {
    let file = sb.write("netrc", netrc);
    sb.haul(["get", "-d", &sb.dir_arg()])
        .args(urls)
        .args([Path::new("--netrc-file"), &file])
        .args(extra)
        .run()
}

fn auth(req: &LoggedRequest) -> Option<&str> {
    req.header("authorization")
}

#[test]
fn netrc_credentials_go_to_the_named_host_only() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/a.bin", body(800, 8_000));
    server.add_file("/b.bin", body(801, 8_000));
    let netrc = "# test\nmachine 127.0.0.1\n  login alice\n  password s3cret\n\
                 machine example.invalid login bob password other\n";
    let urls = [server.url("/a.bin"), server.url_on("localhost", "/b.bin")];

    get_with_netrc(&sb, netrc, &urls, &[]).assert_code(0);

    assert_file_eq(&sb.dl("a.bin"), &body(800, 8_000));
    assert_file_eq(&sb.dl("b.bin"), &body(801, 8_000));
    assert_eq!(auth(&server.gets("/a.bin")[0]), Some(ALICE));
    assert_eq!(auth(&server.gets("/b.bin")[0]), None);
}

#[test]
fn netrc_credentials_do_not_follow_a_redirect_to_another_origin() {
    let server = TestServer::start();
    let other = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/host.bin", body(802, 6_000));
    other.add_file("/port.bin", body(803, 6_000));
    server.redirect("/to-host", &server.url_on("localhost", "/host.bin"), 302);
    // Same host (the file names it), another port: another origin.
    server.redirect("/to-port", &other.url("/port.bin"), 307);
    // The default entry would match every target: only the origin rule
    // keeps the credentials home.
    let netrc = "machine 127.0.0.1 login alice password s3cret\n\
                 default login anon password guest\n";
    let urls = [server.url("/to-host"), server.url("/to-port")];

    get_with_netrc(&sb, netrc, &urls, &[]).assert_code(0);

    assert_file_eq(&sb.dl("to-host"), &body(802, 6_000));
    assert_file_eq(&sb.dl("to-port"), &body(803, 6_000));
    assert_eq!(auth(&server.gets("/to-host")[0]), Some(ALICE));
    assert_eq!(auth(&server.gets("/to-port")[0]), Some(ALICE));
    let targets = [server.gets("/host.bin"), other.gets("/port.bin")];
    assert!(targets.iter().all(|gets| !gets.is_empty()));
    for req in targets.iter().flatten() {
        assert_eq!(auth(req), None, "credentials leaked: {req:?}");
    }
    // Asked directly, the default entry applies to any host.
    let sb2 = Sandbox::new();
    let direct = [server.url_on("localhost", "/host.bin")];
    get_with_netrc(&sb2, netrc, &direct, &[]).assert_code(0);
    let last = server.gets("/host.bin").pop().expect("a request");
    assert_eq!(auth(&last), Some(ANON));
}

#[test]
fn userinfo_and_authorization_header_beat_netrc() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/u.bin", body(804, 2_000));
    server.add_file("/h.bin", body(805, 2_000));
    let netrc = "default login alice password s3cret\n";
    let with_user = format!("http://user:pw@127.0.0.1:{}/u.bin", server.port());

    get_with_netrc(&sb, netrc, &[with_user], &[]).assert_code(0);
    let list = format!(
        "{}\n  header=Authorization: Bearer list\n",
        server.url("/h.bin")
    );
    sb.write("list.txt", list);
    get_with_netrc(&sb, netrc, &[], &["-i", "list.txt"]).assert_code(0);

    // base64("user:pw")
    assert_eq!(auth(&server.gets("/u.bin")[0]), Some("Basic dXNlcjpwdw=="));
    assert_eq!(auth(&server.gets("/h.bin")[0]), Some("Bearer list"));
}

#[test]
fn netrc_flag_reads_home_netrc_or_the_netrc_variable_and_is_off_without_it() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    for name in ["off", "home", "var"] {
        server.add_file(&format!("/{name}.bin"), body(806, 1_000));
    }
    let home = sb.root().join("home");
    std::fs::create_dir(&home).expect("create home");
    std::fs::write(home.join(".netrc"), "default login alice password s3cret\n")
        .expect("write ~/.netrc");
    let var = sb.write(
        "other-netrc",
        "machine 127.0.0.1 login anon password guest\n",
    );
    let run = |name: &str, netrc: &[&str], vars: &[(&str, &Path)]| {
        let cmd = sb
            .haul([
                "get",
                &server.url(&format!("/{name}.bin")),
                "-d",
                &sb.dir_arg(),
            ])
            .args(netrc);
        with_env(cmd, vars).run().assert_code(0);
        server.gets(&format!("/{name}.bin"))[0].clone()
    };

    let off = run("off", &[], &[("HOME", &home)]);
    let from_home = run("home", &["--netrc"], &[("HOME", &home)]);
    let from_var = run("var", &["--netrc"], &[("HOME", &home), ("NETRC", &var)]);

    assert_eq!(auth(&off), None);
    assert_eq!(auth(&from_home), Some(ALICE));
    assert_eq!(auth(&from_var), Some(ANON));
}

#[test]
fn broken_or_missing_netrc_file_exits_2_before_any_request() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/a.bin", body(807, 1_000));
    let urls = [server.url("/a.bin")];

    let out = get_with_netrc(&sb, "machine h login u\npasswd hunter2\n", &urls, &[]);
    out.assert_code(2).assert_stderr_has(&["netrc:2:"]);
    assert!(!out.all_output().contains("hunter2"), "{out}");
    let out = sb
        .haul(["get", &urls[0], "--netrc-file", "absent-netrc"])
        .run();
    out.assert_code(2).assert_stderr_has(&["absent-netrc"]);
    assert!(server.requests().is_empty(), "{:?}", server.requests());
}

#[test]
fn authorization_header_from_the_command_line_stays_with_its_origin() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/t.bin", body(808, 4_000));
    server.redirect("/start", &server.url_on("localhost", "/t.bin"), 302);

    let out = sb
        .haul(["get", &server.url("/start"), "-d", &sb.dir_arg()])
        .args(["--header", "Authorization: Bearer secret-token"])
        .run();

    out.assert_code(0);
    assert_file_eq(&sb.dl("start"), &body(808, 4_000));
    let start = &server.gets("/start")[0];
    assert_eq!(auth(start), Some("Bearer secret-token"), "{start:?}");
    let target = &server.gets("/t.bin");
    assert_eq!(target.len(), 1, "{target:?}");
    assert_eq!(auth(&target[0]), None, "{:?}", target[0]);
}
