//! `haul get` when the server behaves: lists, positional URLs, stdin,
//! parallelism limits, custom headers and redirects. Assertions are on exit
//! codes, bytes on disk and the server's request log.

use crate::support::bodies::{assert_file_eq, body};
use crate::support::cli::Sandbox;
use crate::support::server::TestServer;

#[test]
fn downloads_a_list_in_parallel_byte_exact() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let sizes = [
        ("a.bin", 1),
        ("b.bin", 100_000),
        ("c.bin", 1 << 20),
        ("d.bin", 3 << 20),
    ];
    for (i, (name, size)) in sizes.iter().enumerate() {
        server.add_file(&format!("/{name}"), body(100 + i as u64, *size));
    }
    let list = format!(
        "# four files\n{}\n{}\n\n{}\n{}\n  out=renamed.bin\n",
        server.url("/a.bin"),
        server.url("/b.bin"),
        server.url("/c.bin"),
        server.url("/d.bin"),
    );
    sb.write("list.txt", list);

    let out = sb
        .haul(["get", "-i", "list.txt", "-d", &sb.dir_arg(), "-j", "2"])
        .run();

    out.assert_code(0);
    for (i, (name, size)) in sizes.iter().enumerate() {
        let on_disk = if *name == "d.bin" {
            "renamed.bin"
        } else {
            name
        };
        assert_file_eq(&sb.dl(on_disk), &body(100 + i as u64, *size));
        assert_eq!(server.gets(&format!("/{name}")).len(), 1, "{name}");
    }
    sb.assert_no_part_files();
    assert_eq!(sb.downloads().len(), 4, "{:?}", sb.downloads());
    assert_eq!(out.done_lines().len(), 4, "{out}");
    assert!(server.max_in_flight_total() <= 2);
}

#[test]
fn downloads_an_empty_file() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/empty.txt", Vec::new());

    let out = sb
        .haul(["get", &server.url("/empty.txt"), "-d", &sb.dir_arg()])
        .run();

    out.assert_code(0);
    assert_file_eq(&sb.dl("empty.txt"), &[]);
    sb.assert_no_part_files();
}

#[test]
fn downloads_positional_urls() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/one.bin", body(110, 200_000));
    server.add_file("/dir/two.bin", body(111, 300_000));

    let out = sb
        .haul([
            "get",
            &server.url("/one.bin"),
            &server.url("/dir/two.bin"),
            "-d",
            &sb.dir_arg(),
        ])
        .run();

    out.assert_code(0);
    assert_file_eq(&sb.dl("one.bin"), &body(110, 200_000));
    assert_file_eq(&sb.dl("two.bin"), &body(111, 300_000));
    sb.assert_no_part_files();
}

#[test]
fn reads_the_list_from_stdin() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/s1.bin", body(120, 50_000));
    server.add_file("/s2.bin", body(121, 60_000));
    let stdin = sb.write(
        "stdin.txt",
        format!("{}\n{}\n", server.url("/s1.bin"), server.url("/s2.bin")),
    );

    let out = sb
        .haul(["get", "-i", "-", "-d", &sb.dir_arg()])
        .stdin_file(stdin)
        .run();

    out.assert_code(0);
    assert_file_eq(&sb.dl("s1.bin"), &body(120, 50_000));
    assert_file_eq(&sb.dl("s2.bin"), &body(121, 60_000));
}

/// Four paced bodies (about 0.25 s each) give a parallel client every chance
/// to overlap them.
fn add_paced_files(server: &TestServer, names: &[&str], seed: u64) {
    add_files_at(server, names, seed, 1024 * 1024);
}

/// 256 KiB files served at `rate` bytes a second each.
fn add_files_at(server: &TestServer, names: &[&str], seed: u64, rate: u64) {
    for (i, name) in names.iter().enumerate() {
        let path = format!("/{name}");
        server.add_file(&path, body(seed + i as u64, 256 * 1024));
        server.set_rate(&path, rate);
    }
}

#[test]
fn j1_keeps_one_download_in_flight() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let names = ["p1.bin", "p2.bin", "p3.bin", "p4.bin"];
    add_paced_files(&server, &names, 130);
    write_list(&sb, &server, &names);

    let out = sb
        .haul(["get", "-i", "list.txt", "-d", &sb.dir_arg(), "-j", "1"])
        .run();

    out.assert_code(0);
    for (i, name) in names.iter().enumerate() {
        assert_file_eq(&sb.dl(name), &body(130 + i as u64, 256 * 1024));
    }
    assert_eq!(server.max_in_flight_total(), 1);
}

#[test]
fn j_is_that_many_downloads_at_once_from_one_host_without_a_per_host_cap() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let owned: Vec<String> = (0..12).map(|i| format!("one{i}.bin")).collect();
    let names: Vec<&str> = owned.iter().map(String::as_str).collect();
    // A second each, so all twelve are still running when the last starts.
    add_files_at(&server, &names, 160, 256 * 1024);
    write_list(&sb, &server, &names);

    let out = sb
        .haul(["get", "-i", "list.txt", "-d", &sb.dir_arg(), "-j", "12"])
        .run();

    out.assert_code(0);
    for (i, name) in names.iter().enumerate() {
        assert_file_eq(&sb.dl(name), &body(160 + i as u64, 256 * 1024));
    }
    assert_eq!(server.max_in_flight("127.0.0.1"), 12, "{out}");
}

#[test]
fn max_per_host_limits_each_host_separately() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let names = ["h1.bin", "h2.bin", "h3.bin", "h4.bin", "h5.bin", "h6.bin"];
    add_paced_files(&server, &names, 140);
    // Hosts alternate so even a queue that blocks at its head can overlap them.
    let list: String = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let host = if i % 2 == 0 { "127.0.0.1" } else { "localhost" };
            format!("{}\n", server.url_on(host, &format!("/{n}")))
        })
        .collect();
    sb.write("list.txt", list);

    let out = sb
        .haul([
            "get",
            "-i",
            "list.txt",
            "-d",
            &sb.dir_arg(),
            "-j",
            "4",
            "--max-per-host",
            "1",
        ])
        .run();

    out.assert_code(0);
    for (i, name) in names.iter().enumerate() {
        assert_file_eq(&sb.dl(name), &body(140 + i as u64, 256 * 1024));
    }
    assert_eq!(server.max_in_flight("127.0.0.1"), 1);
    assert_eq!(server.max_in_flight("localhost"), 1);
    assert_eq!(
        server.max_in_flight_total(),
        2,
        "the two hosts should be served in parallel"
    );
}

#[test]
fn sends_custom_headers_user_agent_and_identity_encoding() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/h1.bin", body(150, 1000));
    server.add_file("/h2.bin", body(151, 1000));
    sb.write(
        "list.txt",
        format!(
            "{}\n  header=X-From-List: list-value\n{}\n",
            server.url("/h1.bin"),
            server.url("/h2.bin")
        ),
    );

    let out = sb
        .haul([
            "get",
            "-i",
            "list.txt",
            "-d",
            &sb.dir_arg(),
            "--header",
            "X-Token: secret-1",
            "--user-agent",
            "haul-test/9",
        ])
        .run();

    out.assert_code(0);
    let h1 = server.gets("/h1.bin");
    let h2 = server.gets("/h2.bin");
    assert_eq!(h1[0].header("x-from-list"), Some("list-value"));
    assert_eq!(h2[0].header("x-from-list"), None, "list header= is per URL");
    for req in [&h1[0], &h2[0]] {
        assert_eq!(req.header("x-token"), Some("secret-1"), "{req:?}");
        assert_eq!(req.header("user-agent"), Some("haul-test/9"), "{req:?}");
        assert_eq!(req.header("accept-encoding"), Some("identity"), "{req:?}");
    }
}

#[test]
fn follows_redirects() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/t1.bin", body(160, 10_000));
    server.add_file("/t2.bin", body(161, 20_000));
    server.add_file("/t3.bin", body(162, 30_000));
    server.redirect("/r1", "/t1.bin", 302);
    server.redirect("/r2", &server.url("/t2.bin"), 301);
    server.redirect("/r3", "/r3b", 307);
    server.redirect("/r3b", "/t3.bin", 308);
    sb.write(
        "list.txt",
        format!(
            "{}\n  out=one.bin\n{}\n  out=two.bin\n{}\n  out=three.bin\n",
            server.url("/r1"),
            server.url("/r2"),
            server.url("/r3"),
        ),
    );

    let out = sb
        .haul(["get", "-i", "list.txt", "-d", &sb.dir_arg()])
        .run();

    out.assert_code(0);
    assert_file_eq(&sb.dl("one.bin"), &body(160, 10_000));
    assert_file_eq(&sb.dl("two.bin"), &body(161, 20_000));
    assert_file_eq(&sb.dl("three.bin"), &body(162, 30_000));
}

#[test]
fn quiet_prints_only_failures() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    server.add_file("/fine.bin", body(140, 10_000));
    let list = format!(
        "{}\n{}\n",
        server.url("/fine.bin"),
        server.url("/missing.bin")
    );
    sb.write("list.txt", list);

    let out = sb
        .haul(["get", "-q", "-i", "list.txt", "-d", &sb.dir_arg()])
        .run();

    out.assert_code(1);
    assert_file_eq(&sb.dl("fine.bin"), &body(140, 10_000));
    assert_eq!(out.stdout, "", "quiet run printed to stdout");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(
        lines[0].starts_with("failed missing.bin") && lines[0].contains("404"),
        "{out}"
    );
}

/// `list.txt`: the server's URL of each of `names`, a line each.
fn write_list(sb: &Sandbox, server: &TestServer, names: &[&str]) {
    let list: String = names
        .iter()
        .map(|n| format!("{}\n", server.url(&format!("/{n}"))))
        .collect();
    sb.write("list.txt", list);
}
