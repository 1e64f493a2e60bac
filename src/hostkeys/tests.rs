use std::fs;

use base64ct::{Base64, Encoding};

use super::entry::{glob_match, Entry};
use super::*;
use crate::keys::testutil::{generate, ssh_keygen, TempDir};
use crate::keys::PrivateKey;
use crate::ErrorKind;

fn key(seed: u8) -> PublicKey {
    PrivateKey::ed25519_from_seed([seed; 32]).public_key()
}

/// `ssh-keygen -H` applied to `lines`; returns the hashed lines.
fn hashed_by_ssh_keygen(dir: &TempDir, lines: &str) -> Vec<String> {
    let path = dir.join("to_hash");
    fs::write(&path, lines).unwrap();
    ssh_keygen(&["-q", "-H", "-f", path.to_str().unwrap()]);
    let hashed = fs::read_to_string(&path).unwrap();
    hashed.lines().map(str::to_string).collect()
}

/// Whether `ssh-keygen -F name -f path` finds an entry.
fn ssh_keygen_finds(path: &Path, name: &str) -> bool {
    let out = std::process::Command::new("ssh-keygen")
        .args(["-F", name, "-f", path.to_str().unwrap()])
        .output()
        .unwrap();
    out.status.success() && !out.stdout.is_empty()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn known_hosts_verdicts() {
    let dir = TempDir::new("hostkeys-check");
    let (a, b, revoked, ca) = (key(1), key(2), key(3), key(4));
    let ecdsa_path = dir.join("ecdsa");
    generate(&ecdsa_path, "ecdsa", Some(256), "", &[]);
    let ecdsa =
        PublicKey::from_openssh(&fs::read_to_string(ecdsa_path.with_extension("pub")).unwrap())
            .unwrap();
    let hashed = hashed_by_ssh_keygen(
        &dir,
        &format!("hashed.example.com {a}\n[hashed.example.com]:2200 {b}\n"),
    );
    assert_eq!(hashed.len(), 2);
    assert!(hashed.iter().all(|l| l.starts_with("|1|")), "{hashed:?}");

    let lines = [
        "# known hosts for the test".to_string(),
        format!("plain.example.com,192.0.2.1 {a}"),
        format!("[plain.example.com]:2222 {b} comment"),
        format!("*.wild.example.net,!bad.wild.example.net {a}"),
        format!("@revoked * {revoked}"),
        format!("revoked.example.com {revoked}"),
        format!("@cert-authority *.example.com {ca}"),
        "this line does not parse".to_string(),
        format!(
            "host?.example.org\t{}   ",
            a.to_openssh().replace(' ', "\t")
        ),
        format!("ecdsa.example.com {ecdsa}"),
        String::new(),
        hashed[0].clone(),
        hashed[1].clone(),
        "ssh-dss.example.com ssh-dss AAAAB3NzaC1kc3MAAACBAP".to_string(),
    ];
    let path = dir.join("known_hosts");
    fs::write(&path, lines.join("\n")).unwrap();
    let check =
        |host: &str, port: u16, k: &PublicKey| check_known_hosts(&path, host, port, k).unwrap();
    use HostKeyStatus::*;

    assert_eq!(check("plain.example.com", 22, &a), Match);
    assert_eq!(check("PLAIN.Example.COM", 22, &a), Match);
    assert_eq!(check("192.0.2.1", 22, &a), Match);
    assert_eq!(check("plain.example.com", 22, &b), Mismatch { line: 2 });
    assert_eq!(check("plain.example.com", 2222, &b), Match);
    assert_eq!(check("plain.example.com", 2222, &a), Mismatch { line: 3 });
    assert_eq!(check("plain.example.com", 2223, &a), NotFound);
    assert_eq!(check("other.example.com", 22, &a), NotFound);
    // A host known by a key of another type: a mismatch, as in OpenSSH and Paramiko.
    assert_eq!(check("plain.example.com", 22, &ecdsa), Mismatch { line: 2 });
    assert_eq!(check("ecdsa.example.com", 22, &ecdsa), Match);
    assert_eq!(check("ecdsa.example.com", 22, &a), Mismatch { line: 10 });
    // The line named is one of the same type when there is one.
    let mut mixed = HostKeys::new();
    mixed.load_bytes(
        format!("m.example.com {ecdsa}\nm.example.com {b}\n").as_bytes(),
        None,
        false,
    );
    assert_eq!(mixed.check("m.example.com", 22, &a), Mismatch { line: 2 });
    assert_eq!(mixed.check("m.example.com", 22, &b), Match);

    // Wildcards and negation.
    assert_eq!(check("x.wild.example.net", 22, &a), Match);
    assert_eq!(check("x.y.wild.example.net", 22, &b), Mismatch { line: 4 });
    assert_eq!(check("bad.wild.example.net", 22, &a), NotFound);
    assert_eq!(check("wild.example.net", 22, &a), NotFound);
    assert_eq!(check("host1.example.org", 22, &a), Match);
    assert_eq!(check("host12.example.org", 22, &a), NotFound);

    // @revoked wins over a matching line; @cert-authority lines are skipped.
    assert_eq!(
        check("revoked.example.com", 22, &revoked),
        Revoked { line: 5 }
    );
    assert_eq!(
        check("anything.example", 2222, &revoked),
        Revoked { line: 5 }
    );
    assert_eq!(check("x.example.com", 22, &ca), NotFound);

    // Hashed entries made by ssh-keygen -H.
    assert_eq!(check("hashed.example.com", 22, &a), Match);
    assert_eq!(check("hashed.example.com", 22, &b), Mismatch { line: 12 });
    assert_eq!(check("hashed.example.com", 2200, &b), Match);
    assert_eq!(check("hashed.example.com", 2201, &b), NotFound);

    assert_eq!(
        check_known_hosts(&dir.join("missing"), "h", 22, &a).unwrap(),
        NotFound
    );

    // The same through HostKeys: lookups, CA keys, the file of a verdict.
    let mut known = HostKeys::new();
    known.load(&path).unwrap();
    assert_eq!(known.lookup("plain.example.com", 22), vec![a.clone()]);
    assert_eq!(known.lookup("Plain.example.com", 2222), vec![b.clone()]);
    assert_eq!(known.lookup("hashed.example.com", 0), vec![a.clone()]);
    assert_eq!(known.lookup("ecdsa.example.com", 22), vec![ecdsa.clone()]);
    assert!(known.lookup("revoked.example.com", 22).is_empty());
    assert!(known.lookup("nowhere.example", 22).is_empty());
    assert_eq!(known.cert_authorities_for("x.example.com", 22), vec![ca]);
    assert!(known.cert_authorities_for("x.example.org", 22).is_empty());
    let detailed = known.check_detailed("plain.example.com", 22, &b);
    assert_eq!(detailed.status, Mismatch { line: 2 });
    assert_eq!(detailed.file.as_deref(), Some(path.as_path()));
    let refusal = detailed.refusal("plain.example.com", &b).unwrap();
    assert!(refusal.contains("does not match"), "{refusal}");
    assert!(
        refusal.contains(&format!("{} line 2", path.display())),
        "{refusal}"
    );
    assert!(refusal.contains(&b.fingerprint_sha256()), "{refusal}");
    let matched = known.check_detailed("plain.example.com", 22, &a);
    assert_eq!(matched.refusal("plain.example.com", &a), None);
    // Lines with the unsupported ssh-dss key are not counted; markers are.
    assert_eq!(known.len(), 10);
}

#[test]
fn hash_host_matches_ssh_keygen() {
    let dir = TempDir::new("hostkeys-hash");
    let k = key(9);
    for name in [
        "example.com",
        "[example.com]:2222",
        "192.0.2.7",
        "[::1]:22022",
    ] {
        let hashed = hashed_by_ssh_keygen(&dir, &format!("{name} {k}\n"));
        let field = hashed[0].split(' ').next().unwrap();
        let salt64 = field
            .strip_prefix("|1|")
            .unwrap()
            .split('|')
            .next()
            .unwrap();
        let salt = Base64::decode_vec(salt64).unwrap();
        assert_eq!(hash_host(name, &salt), field, "{name}");
    }
    let a = hash_host_random("example.com");
    let b = hash_host_random("example.com");
    assert_ne!(a, b, "fresh salts");
    let patterns = a.parse().unwrap();
    assert!(super::entry::host_matches(&patterns, "example.com"));
    assert!(!super::entry::host_matches(&patterns, "example.org"));
}

#[test]
fn add_then_check() {
    let dir = TempDir::new("hostkeys-add");
    let path = dir.join("known_hosts");
    let (a, b) = (key(5), key(6));
    add_known_host(&path, "new.example.com", 22, &a).unwrap();
    #[cfg(unix)]
    assert_eq!(mode(&path), 0o600);
    add_known_host(&path, "New.Example.com", 2022, &b).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(
        text,
        format!("new.example.com {a}\n[new.example.com]:2022 {b}\n")
    );
    assert_eq!(
        check_known_hosts(&path, "new.example.com", 22, &a).unwrap(),
        HostKeyStatus::Match
    );
    assert_eq!(
        check_known_hosts(&path, "new.example.com", 2022, &b).unwrap(),
        HostKeyStatus::Match
    );
    assert_eq!(
        check_known_hosts(&path, "new.example.com", 22, &b).unwrap(),
        HostKeyStatus::Mismatch { line: 1 }
    );

    // A file whose last line has no newline gets one before the new entry.
    let path = dir.join("no_newline");
    fs::write(&path, format!("old.example.com {a}")).unwrap();
    add_known_host(&path, "::1", 2222, &b).unwrap();
    assert_eq!(
        check_known_hosts(&path, "old.example.com", 22, &a).unwrap(),
        HostKeyStatus::Match
    );
    assert_eq!(
        check_known_hosts(&path, "::1", 2222, &b).unwrap(),
        HostKeyStatus::Match
    );

    let err = add_known_host(&dir.join("no/such/dir"), "h", 22, &a).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.message().contains("no/such/dir"), "{err}");
    for bad in ["", "a b", "a,b", "*", "!x", "h\nevil.example.com", "[h]:22"] {
        let err = add_known_host(&path, bad, 22, &a).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArg, "{bad:?}");
        let err = HostKeys::new().add(bad, 22, &a, true).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArg, "{bad:?}");
    }
}

/// A file with everything a user's known_hosts may hold, some of it odd.
fn odd_file(a: &PublicKey, b: &PublicKey) -> Vec<u8> {
    let mut text = Vec::new();
    text.extend_from_slice(b"# comment line\n\n   \n");
    text.extend_from_slice(format!("one.example.com {a} a comment\n").as_bytes());
    text.extend_from_slice(format!("two.example.com,one.example.com\t{b}\r\n").as_bytes());
    text.extend_from_slice(b"\xff\xfe not UTF-8 at all\n");
    text.extend_from_slice(format!("@unknown-marker x.example.com {a}\n").as_bytes());
    text.extend_from_slice(b"unparseable line\n");
    text.extend_from_slice(b"dss.example.com ssh-dss AAAAB3NzaC1kc3MAAAAB\n");
    text.extend_from_slice(format!("   indented.example.com   {a}   \n").as_bytes());
    text.extend_from_slice(format!("@revoked * {b}").as_bytes()); // no final newline
    text
}

#[test]
fn save_round_trip_is_byte_identical() {
    let dir = TempDir::new("hostkeys-roundtrip");
    let (a, b) = (key(11), key(12));
    let path = dir.join("known_hosts");
    let original = odd_file(&a, &b);
    fs::write(&path, &original).unwrap();
    let mut known = HostKeys::new();
    known.load(&path).unwrap();
    assert_eq!(known.to_bytes(), original);
    known.save(&path).unwrap();
    assert_eq!(fs::read(&path).unwrap(), original);
    assert_eq!(known.lookup("one.example.com", 22), vec![a.clone()]);
    assert!(
        known.lookup("two.example.com", 22).is_empty(),
        "b is revoked"
    );
    assert_eq!(known.lookup("indented.example.com", 22), vec![a.clone()]);
    assert_eq!(
        known.check("two.example.com", 22, &b),
        HostKeyStatus::Revoked { line: 11 }
    );

    // An added entry after a last line without newline: one newline is inserted.
    known.add("three.example.com", 22, &a, false).unwrap();
    let mut expected = original.clone();
    expected.extend_from_slice(format!("\nthree.example.com {a}\n").as_bytes());
    assert_eq!(known.to_bytes(), expected);

    // Removing keeps every other line as it was.
    assert_eq!(known.remove("three.example.com", 22), 1);
    assert_eq!(known.to_bytes(), original);
    assert_eq!(known.remove("one.example.com", 22), 2, "both lines list it");
    let text = String::from_utf8_lossy(&known.to_bytes()).into_owned();
    assert!(!text.contains("one.example.com"), "{text}");
    assert!(text.contains("@revoked * "), "{text}");
    assert!(text.contains("unparseable line\n"), "{text}");
    assert!(text.contains("dss.example.com ssh-dss"), "{text}");
}

#[test]
fn add_hashed_and_plain_then_remove() {
    let dir = TempDir::new("hostkeys-add-remove");
    let (a, b) = (key(21), key(22));
    let path = dir.join("known_hosts");
    let mut known = HostKeys::new();
    known.load(&path).unwrap(); // missing: nothing loaded
    assert!(known.is_empty());
    known.add("plain.example.com", 22, &a, false).unwrap();
    known.add("hashed.example.com", 2222, &a, true).unwrap();
    known.add("hashed.example.com", 2222, &a, true).unwrap(); // no duplicate
    assert_eq!(known.len(), 2);
    known.save(&path).unwrap();
    #[cfg(unix)]
    assert_eq!(mode(&path), 0o600);
    let text = fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0], format!("plain.example.com {a}"));
    assert!(lines[1].starts_with("|1|"), "{text}");
    assert!(ssh_keygen_finds(&path, "plain.example.com"));
    assert!(ssh_keygen_finds(&path, "[hashed.example.com]:2222"));
    assert!(!ssh_keygen_finds(&path, "hashed.example.com"));

    // Replacing a key of the same type for exactly this host (Paramiko's add).
    known.add("hashed.example.com", 2222, &b, true).unwrap();
    assert_eq!(known.len(), 2);
    assert_eq!(known.lookup("hashed.example.com", 2222), vec![b.clone()]);
    assert_eq!(
        known.check("hashed.example.com", 2222, &b),
        HostKeyStatus::Match
    );
    assert_eq!(
        known.check("hashed.example.com", 2222, &a),
        HostKeyStatus::Mismatch { line: 2 },
        "added lines are numbered as save will write them"
    );

    assert_eq!(known.remove("hashed.example.com", 2222), 1);
    assert_eq!(known.remove("plain.example.com", 22), 1);
    assert_eq!(known.remove("plain.example.com", 22), 0);
    known.save(&path).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"");
    assert!(!ssh_keygen_finds(&path, "plain.example.com"));
}

#[test]
fn system_files_are_never_written() {
    let dir = TempDir::new("hostkeys-system");
    let (a, b) = (key(31), key(32));
    let system = dir.join("ssh_known_hosts");
    let user = dir.join("known_hosts");
    fs::write(&system, format!("sys.example.com {a}\n")).unwrap();
    fs::write(&user, format!("# mine\nuser.example.com {b}\n")).unwrap();
    let mut known = HostKeys::new();
    known.load_system(&system).unwrap();
    known.load(&user).unwrap();
    assert_eq!(known.len(), 2);
    assert_eq!(known.check("sys.example.com", 22, &a), HostKeyStatus::Match);
    let detailed = known.check_detailed("sys.example.com", 22, &b);
    assert_eq!(detailed.status, HostKeyStatus::Mismatch { line: 1 });
    assert_eq!(detailed.file.as_deref(), Some(system.as_path()));
    assert_eq!(known.remove("sys.example.com", 22), 0, "read-only");
    assert_eq!(known.check("sys.example.com", 22, &a), HostKeyStatus::Match);
    known.add("new.example.com", 22, &a, false).unwrap();
    known.save(&user).unwrap();
    assert_eq!(
        fs::read_to_string(&user).unwrap(),
        format!("# mine\nuser.example.com {b}\nnew.example.com {a}\n")
    );
    assert_eq!(
        fs::read_to_string(&system).unwrap(),
        format!("sys.example.com {a}\n")
    );
    known.clear();
    assert!(known.is_empty());
}

#[cfg(unix)]
#[test]
fn save_is_atomic_keeps_mode_and_follows_links() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("hostkeys-save");
    let a = key(41);
    let path = dir.join("known_hosts");
    fs::write(&path, format!("x.example.com {a}\n")).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let mut known = HostKeys::new();
    known.load(&path).unwrap();
    known.add("y.example.com", 22, &a, false).unwrap();
    known.save(&path).unwrap();
    assert_eq!(mode(&path), 0o644);
    // No temporary file left behind.
    let names: Vec<String> = fs::read_dir(dir.join(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["known_hosts"]);

    // A symbolic link is followed: the target is replaced, the link stays.
    let link = dir.join("link");
    std::os::unix::fs::symlink("known_hosts", &link).unwrap();
    known.add("z.example.com", 22, &a, false).unwrap();
    known.save(&link).unwrap();
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(fs::read_to_string(&path).unwrap().contains("z.example.com"));

    // A directory that does not exist is an I/O error naming it.
    let err = known.save(&dir.join("no/such/dir/file")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.message().contains("no/such/dir"), "{err}");
}

#[test]
fn hostile_lines_are_ignored_without_panic() {
    let a = key(51);
    let blob64 = a.base64();
    let hostile: Vec<Vec<u8>> = vec![
        b"@revoked".to_vec(),
        b"@cert-authority host".to_vec(),
        b"@revoked host ssh-ed25519".to_vec(),
        b"|1|".to_vec(),
        format!("|1| {a}").into_bytes(),
        format!("|1|||| {a}").into_bytes(),
        format!("|1|c2FsdA==|aGFzaA== {a}").into_bytes(), // salt of 4 bytes
        format!("|1|!!!|!!! {a}").into_bytes(),
        format!("host ssh-rsa {blob64}").into_bytes(), // type differs from the blob
        b"host ssh-ed25519 ====".to_vec(),
        b"host ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA==".to_vec(), // truncated key
        b"host ssh-ed25519 /////////////////////////////".to_vec(),
        format!("{} {a}", "*".repeat(10_000)).into_bytes(),
        format!("{} {a}", ",".repeat(10_000)).into_bytes(),
        vec![0u8; 1000],
        vec![b'\r'; 10],
        "é ü ☃".as_bytes().to_vec(),
    ];
    for line in &hostile {
        if let Some(entry) = Entry::parse(line) {
            // Long pattern lists must still match in bounded time.
            let _ = entry.matches(&"a".repeat(5000));
        }
    }
    assert!(Entry::parse(format!("{} {a}", "*".repeat(10_000)).as_bytes()).is_some());
    for line in &hostile[..12] {
        // Either not an entry, or (a well-formed type name with a broken key) one without
        // a usable key.
        assert!(
            Entry::parse(line).is_none_or(|e| e.key.is_none()),
            "{:?}",
            String::from_utf8_lossy(line)
        );
    }

    // A file of the hostile lines but the wildcard ones, and random bytes: loads, checks
    // (nothing matches), saves identically.
    let mut file = hostile
        .iter()
        .filter(|l| !l.starts_with(b"**") && !l.starts_with(b",,"))
        .cloned()
        .collect::<Vec<_>>()
        .join(&b'\n');
    let mut x = 0x1234_5678u32;
    for _ in 0..20_000 {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let byte = (x >> 24) as u8;
        file.push(if byte % 7 == 0 { b'\n' } else { byte });
    }
    let mut known = HostKeys::new();
    known.load_bytes(&file, None, false);
    // The line with a broken ssh-ed25519 key for "host" is some other key: a mismatch.
    assert!(matches!(
        known.check("host", 22, &a),
        HostKeyStatus::Mismatch { .. }
    ));
    assert_eq!(known.check("nothere", 22, &a), HostKeyStatus::NotFound);
    assert!(known.lookup("host", 22).is_empty());
    assert_eq!(known.to_bytes(), file);
}

#[test]
fn oversized_file_is_refused() {
    let dir = TempDir::new("hostkeys-big");
    let path = dir.join("known_hosts");
    let f = fs::File::create(&path).unwrap();
    f.set_len(file::MAX_FILE_BYTES + 1).unwrap(); // sparse
    let err = HostKeys::new().load(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.message().contains("larger than"), "{err}");
}

#[test]
fn glob_patterns() {
    assert!(glob_match(b"abc", b"abc"));
    assert!(glob_match(b"abc", b"*"));
    assert!(glob_match(b"", b"*"));
    assert!(glob_match(b"abc", b"a*c"));
    assert!(glob_match(b"abc", b"a?c"));
    assert!(glob_match(b"axxbxxc", b"a*b*c"));
    assert!(!glob_match(b"abc", b"a?"));
    assert!(!glob_match(b"abcd", b"a*c"));
    assert!(!glob_match(b"", b"?"));
    let long = vec![b'a'; 5000];
    assert!(!glob_match(&long, b"*a*a*a*a*a*a*a*b"));
}
