//! Conventions: several admins on distinct loopback addresses of this machine, each in its own
//! temp directory, linked over TCP with a shared secret.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use greenroom::{ActorSystem, ConventionUpdate, MemberInfo, MemberState};

use crate::support::{TestSystem, bin, wait_for};

/// A fresh secret in a directory of its own.
pub(crate) struct Secret {
    _dir: tempfile::TempDir,
    pub(crate) path: PathBuf,
}

impl Secret {
    /// The 32 bytes the file holds in hex: what a test needs to speak Noise to a member.
    pub(crate) fn key(&self) -> [u8; 32] {
        let text = std::fs::read_to_string(&self.path).unwrap();
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text.trim()[2 * i..2 * i + 2], 16).unwrap();
        }
        key
    }
}

/// Complete a Noise handshake with the member at `to` as a holder of `key`: the connection and
/// its transport state.
pub(crate) fn noise_link(to: &str, key: &[u8; 32]) -> (TcpStream, snow::TransportState) {
    let params = "Noise_NNpsk0_25519_AESGCM_BLAKE2s".parse().unwrap();
    let mut hs = snow::Builder::new(params)
        .psk(0, key)
        .unwrap()
        .prologue(b"greenroom convention 1")
        .unwrap()
        .build_initiator()
        .unwrap();
    let mut c = TcpStream::connect(to).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut msg = vec![0u8; 65535];
    let n = hs.write_message(&[], &mut msg).unwrap();
    c.write_all(&(n as u16).to_be_bytes()).unwrap();
    c.write_all(&msg[..n]).unwrap();
    let mut len = [0u8; 2];
    c.read_exact(&mut len).unwrap();
    let mut reply = vec![0u8; u16::from_be_bytes(len) as usize];
    c.read_exact(&mut reply).unwrap();
    let mut scratch = vec![0u8; 65535];
    hs.read_message(&reply, &mut scratch).unwrap();
    (c, hs.into_transport_mode().unwrap())
}

pub(crate) fn secret() -> Secret {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret");
    let out = std::process::Command::new(bin("greenroom"))
        .args(["secret", "new"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Secret { _dir: dir, path }
}

/// A member listening on `listen`, joining `leaders`.
pub(crate) fn member(secret: &Path, listen: &str, leaders: &[&str]) -> TestSystem {
    member_with(secret, listen, leaders, &[])
}

/// A member listening on `listen`, joining `leaders`, with more admin flags.
pub(crate) fn member_with(
    secret: &Path,
    listen: &str,
    leaders: &[&str],
    more: &[&str],
) -> TestSystem {
    let secret = secret.to_str().unwrap();
    let mut args = vec!["--listen", listen, "--secret-file", secret];
    for l in leaders {
        args.extend(["--convention", l]);
    }
    args.extend(more);
    TestSystem::start_with(&args)
}

/// A member's address in its convention.
pub(crate) fn address(system: &mut ActorSystem) -> String {
    system
        .system_status()
        .unwrap()
        .convention
        .expect("in a convention")
}

fn state(members: &[MemberInfo], address: &str) -> Option<MemberState> {
    members
        .iter()
        .find(|m| m.address == address)
        .map(|m| m.state)
}

/// Wait until `system` sees every address in `alive` alive and every one in `gone` gone.
pub(crate) fn wait_sees(system: &mut ActorSystem, alive: &[&str], gone: &[&str]) {
    wait_for(&format!("alive {alive:?}, gone {gone:?}"), || {
        let members = system.members().unwrap();
        alive
            .iter()
            .all(|a| state(&members, a) == Some(MemberState::Alive))
            && gone
                .iter()
                .all(|a| state(&members, a) == Some(MemberState::Gone))
    });
}

/// A port free on `ip` now (for leaders that must be named before they start).
pub(crate) fn free_port(ip: &str) -> String {
    let l = std::net::TcpListener::bind((ip, 0)).unwrap();
    format!("{ip}:{}", l.local_addr().unwrap().port())
}

#[test]
fn members_see_each_other_and_hear_of_a_graceful_leave() {
    let s = secret();
    let leader = member(&s.path, "127.0.0.2:0", &[]);
    let mut l = leader.connect();
    let la = address(&mut l);
    let mut one = member(&s.path, "127.0.0.3:0", &[&la]);
    let two = member(&s.path, "127.0.0.4:0", &[&la]);
    let (oa, ta) = (address(&mut one.connect()), address(&mut two.connect()));
    let mut t = two.connect();
    wait_sees(&mut t, &[&la, &oa, &ta], &[]);
    wait_sees(&mut l, &[&la, &oa, &ta], &[]);

    // The CLI's JSON, as documented.
    let json: serde_json::Value =
        serde_json::from_str(&two.cli_ok(&["members", "--json"])).unwrap();
    let members = json["members"].as_array().unwrap();
    assert_eq!(members.len(), 3, "{json}");
    for m in members {
        assert_eq!(m["state"], "alive", "{json}");
        assert_eq!(m["system"], "t", "{json}");
        assert!(m["last_heard_ms"].is_u64(), "{json}");
        assert_eq!(m["capabilities"]["greenroom.os"], "linux", "{json}");
        assert!(
            m["address"].as_str().unwrap().starts_with("127.0.0."),
            "{json}"
        );
    }
    let text = two.cli_ok(&["members"]);
    assert!(text.contains(&oa) && text.contains("alive"), "{text}");

    one.shutdown();
    wait_sees(&mut t, &[&la, &ta], &[&oa]);
    wait_sees(&mut l, &[&la, &ta], &[&oa]);
    drop((l, t));
    for mut m in [leader, two] {
        m.shutdown();
    }
}

#[test]
fn a_killed_member_is_announced_gone_and_rejoins_once_restarted() {
    let s = secret();
    let mut leader = member(&s.path, "127.0.0.2:0", &[]);
    let la = address(&mut leader.connect());
    let mut victim = member(&s.path, "127.0.0.3:0", &[&la]);
    let va = address(&mut victim.connect());
    let mut other = member(&s.path, "127.0.0.4:0", &[&la]);
    let mut o = other.connect();
    wait_sees(&mut o, &[&la, &va], &[]);

    victim.kill_admin();
    wait_sees(&mut o, &[&la], &[&va]);
    wait_sees(&mut leader.connect(), &[&la], &[&va]);

    // Restarted on the same address, it rejoins by itself.
    victim.start_admin(&[
        "--listen",
        &va,
        "--secret-file",
        s.path.to_str().unwrap(),
        "--convention",
        &la,
    ]);
    wait_sees(&mut o, &[&la, &va], &[]);
    drop(o);
    for m in [&mut victim, &mut other, &mut leader] {
        m.shutdown();
    }
}

#[test]
fn a_member_that_falls_silent_is_gone_and_back_once_it_speaks_again() {
    let s = secret();
    let leader = member(&s.path, "127.0.0.15:0", &[]);
    let la = address(&mut leader.connect());
    let silent = member(&s.path, "127.0.0.16:0", &[&la]);
    let sa = address(&mut silent.connect());
    let other = member(&s.path, "127.0.0.17:0", &[&la]);
    let mut o = other.connect();
    wait_sees(&mut o, &[&la, &sa], &[]);
    // A stopped admin keeps its connections open and says nothing, as a host cut off does.
    let pid = nix::unistd::Pid::from_raw(silent.admin_pid as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::SIGSTOP).unwrap();
    wait_sees(&mut o, &[&la], &[&sa]);
    nix::sys::signal::kill(pid, nix::sys::signal::SIGCONT).unwrap();
    wait_sees(&mut o, &[&la, &sa], &[]);
    drop(o);
    for mut m in [silent, other, leader] {
        m.shutdown();
    }
}

/// The next `ConventionUpdate` that reaches `system`, as (member, added, capabilities).
fn next_update(
    system: &mut ActorSystem,
) -> (String, bool, std::collections::BTreeMap<String, String>) {
    let msg = system
        .listen(Duration::from_secs(10))
        .unwrap()
        .expect("a ConventionUpdate in time");
    let u: ConventionUpdate = msg.decode().unwrap();
    (u.member, u.added, u.capabilities)
}

#[test]
fn watchers_hear_of_every_member_then_of_each_change() {
    let s = secret();
    let leader = member(&s.path, "127.0.0.18:0", &[]);
    let la = address(&mut leader.connect());
    let first = member(&s.path, "127.0.0.19:0", &[&la]);
    let fa = address(&mut first.connect());
    let mut l = leader.connect();
    wait_sees(&mut l, &[&la, &fa], &[]);

    // A program watches: one update per other member now.
    l.watch_convention(true).unwrap();
    assert_eq!(next_update(&mut l).0, fa);
    // An actor watches too, and passes what it hears to this program.
    let zoo = crate::support::example("zoo");
    let mut f = first.connect();
    f.load(&zoo).unwrap();
    f.create_actor_by_name("Watcher", Some(&zoo)).unwrap();
    assert_eq!(next_update(&mut f).0, la);

    let mut second = member(&s.path, "127.0.0.20:0", &[&la]);
    let sa = address(&mut second.connect());
    let (who, added, caps) = next_update(&mut l);
    assert_eq!((&who, added), (&sa, true));
    assert_eq!(caps.get("greenroom.os").map(String::as_str), Some("linux"));
    let (who, added, _) = next_update(&mut f);
    assert_eq!((who, added), (sa.clone(), true));

    second.cli_ok(&["capability", "set", "gpu", "yes"]);
    let (who, added, caps) = next_update(&mut l);
    assert_eq!(
        (who.as_str(), added, caps.get("gpu").map(String::as_str)),
        (sa.as_str(), true, Some("yes"))
    );
    assert_eq!(next_update(&mut f).0, sa);

    second.kill_admin();
    let gone = |(who, added, _): (String, bool, _)| (who, added);
    assert_eq!(gone(next_update(&mut l)), (sa.clone(), false));
    assert_eq!(gone(next_update(&mut f)), (sa.clone(), false));
    drop((l, f));
    // A new admin in the killed one's directory clears what it left.
    second.start_admin(&[]);
    for mut m in [second, first, leader] {
        m.shutdown();
    }
}

#[test]
fn actors_run_where_their_requirements_hold_and_exit_when_they_stop() {
    let s = secret();
    let leader = member(&s.path, "127.0.0.21:0", &[]);
    let la = address(&mut leader.connect());
    let gpu = member_with(
        &s.path,
        "127.0.0.22:0",
        &[&la],
        &["--capability", "gpu=yes"],
    );
    let ga = address(&mut gpu.connect());
    let zoo = crate::support::example("zoo");
    let zoo_path = zoo.to_str().unwrap();
    let mut g = gpu.connect();
    let needs_gpu = g
        .create_by_name_requiring("Echo", Some(&zoo), &[("gpu", "yes")])
        .unwrap();
    let plain = g.create_actor_by_name("Echo", Some(&zoo)).unwrap();
    assert_eq!(
        g.ask_as::<String, _>(&needs_gpu, "x", Duration::from_secs(10))
            .unwrap(),
        "x"
    );

    // Requirements no system has: refused, naming what is missing.
    match g.create_by_name_requiring("Echo", Some(&zoo), &[("gpu", "no")]) {
        Err(greenroom::Error::NoCompatibleSystem { unmet }) => {
            assert_eq!(unmet, ["gpu=no (here gpu=yes)"])
        }
        other => panic!("{other:?}"),
    }
    let err = gpu.cli_err(&[
        "create",
        "Echo",
        "--binary",
        zoo_path,
        "--require",
        "zone=south",
    ]);
    assert!(
        err.contains("no system has what the actor requires: zone=south"),
        "{err}"
    );
    let out = gpu.cli_ok(&[
        "create",
        "Echo",
        "--binary",
        zoo_path,
        "--require",
        "gpu=yes",
    ]);
    assert!(out.parse::<greenroom::Address>().is_ok(), "{out}");
    // Where another member has them, the actor is created there.
    wait_sees(&mut leader.connect(), &[&ga], &[]);
    let there = leader.cli_ok(&[
        "create",
        "Echo",
        "--binary",
        zoo_path,
        "--require",
        "gpu=yes",
    ]);
    let there: greenroom::Address = there.parse().unwrap();
    assert_eq!(there.member(), Some(ga.as_str()));

    // A type that requires the gpu itself runs here, and from the leader, here too.
    let gpu_echo = g.create_actor_by_name("GpuEcho", Some(&zoo)).unwrap();
    let there: greenroom::Address = leader
        .cli_ok(&["create", "GpuEcho", "--binary", zoo_path])
        .parse()
        .unwrap();
    assert_eq!(there.member(), Some(ga.as_str()));

    // The capability goes: the actors that need it are asked to exit; the other runs on.
    gpu.cli_ok(&["capability", "unset", "gpu"]);
    let mut ended = Vec::new();
    for _ in 0..2 {
        let env = g
            .listen_any(Duration::from_secs(10))
            .unwrap()
            .expect("a ChildExited in time");
        let notice: greenroom::ChildExited = env.msg.decode().unwrap();
        assert_eq!(notice.reason, greenroom::ExitReason::Requested);
        ended.push(notice.child);
    }
    ended.sort();
    let mut expected = vec![needs_gpu, gpu_echo];
    expected.sort();
    assert_eq!(ended, expected);
    assert_eq!(
        g.ask_as::<String, _>(&plain, "y", Duration::from_secs(10))
            .unwrap(),
        "y"
    );
    drop(g);
    for mut m in [gpu, leader] {
        m.shutdown();
    }
}

#[test]
fn a_program_can_start_its_own_admin_as_a_member() {
    let s = secret();
    let leader = member(&s.path, "127.0.0.23:0", &[]);
    let la = address(&mut leader.connect());
    let place = TestSystem::empty();
    let convention = greenroom::admin::ConventionConfig {
        listen: "127.0.0.24:0".into(),
        leaders: vec![la.clone()],
        capabilities: [("zone".to_string(), "east".to_string())].into(),
        secret_file: s.path.clone(),
        refuse_binaries: false,
    };
    let mut own = ActorSystem::with_config(greenroom::SystemConfig {
        name: crate::support::SYSTEM.into(),
        when_missing: greenroom::WhenMissing::Start,
        admin_binary: Some(bin("greenroom-admin")),
        dir: Some(place.dir.clone()),
        base: Some(greenroom::Base::Multiproc),
        convention: Some(convention),
    })
    .unwrap();
    let oa = address(&mut own);
    let mut l = leader.connect();
    wait_sees(&mut l, &[&la, &oa], &[]);
    let zone = l
        .members()
        .unwrap()
        .into_iter()
        .find(|m| m.address == oa)
        .unwrap()
        .capabilities["zone"]
        .clone();
    assert_eq!(zone, "east");
    // Its admin goes with the program, and leaves the convention as it goes.
    drop(own);
    wait_sees(&mut l, &[&la], &[&oa]);
    drop(l);

    // An admin embedded in an actor binary takes the same flags, and the same checks.
    let out = std::process::Command::new(crate::support::example("zoo"))
        .args(["--greenroom-admin", "--system", "x", "--dir"])
        .arg(place.tmp.path().join("x"))
        .args(["--listen", "127.0.0.24:0"])
        .env_remove("GREENROOM_SECRET_FILE")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("greenroom secret new"), "{err}");
    for mut m in [place, leader] {
        m.shutdown();
    }
}

#[test]
fn with_two_leaders_losing_one_keeps_the_convention_and_it_rejoins() {
    let s = secret();
    let (a1, a2) = (free_port("127.0.0.5"), free_port("127.0.0.6"));
    let leaders = [a1.as_str(), a2.as_str()];
    let mut l1 = member(&s.path, &a1, &leaders);
    let mut l2 = member(&s.path, &a2, &leaders);
    let mut m = member(&s.path, "127.0.0.7:0", &leaders);
    let ma = address(&mut m.connect());
    let (mut sys_m, mut sys_l2) = (m.connect(), l2.connect());
    wait_sees(&mut sys_m, &[&a1, &a2, &ma], &[]);
    wait_sees(&mut sys_l2, &[&a1, &a2, &ma], &[]);

    l1.kill_admin();
    wait_sees(&mut sys_m, &[&a2, &ma], &[&a1]);
    wait_sees(&mut sys_l2, &[&a2, &ma], &[&a1]);

    l1.start_admin(&[
        "--listen",
        &a1,
        "--secret-file",
        s.path.to_str().unwrap(),
        "--convention",
        &leaders.join(","),
    ]);
    wait_sees(&mut sys_m, &[&a1, &a2, &ma], &[]);
    wait_sees(&mut l1.connect(), &[&a1, &a2, &ma], &[]);
    drop((sys_m, sys_l2));
    for sys in [&mut m, &mut l2, &mut l1] {
        sys.shutdown();
    }
}

#[test]
fn a_peer_without_the_secret_joins_nothing_and_is_logged_sparingly() {
    let (good, bad) = (secret(), secret());
    let mut leader = member(&good.path, "127.0.0.8:0", &[]);
    let la = address(&mut leader.connect());
    let mut stranger = member(&bad.path, "127.0.0.9:0", &[&la]);
    wait_for("the leader to refuse the stranger", || {
        leader.admin_log().contains("refused")
    });
    // Five more peers with a wrong secret, each a real Noise handshake: each is closed, none is
    // admitted, and none adds a line to the log.
    for _ in 0..5 {
        wrong_secret_handshake(&la);
    }
    // The stranger keeps trying (every half second), and says once that it cannot get in.
    let refused = |leader: &TestSystem| {
        let status = leader.connect().system_status().unwrap();
        status.counters.links_refused
    };
    wait_for("the stranger to try twice more", || refused(&leader) >= 8);
    assert_eq!(
        stranger.admin_log().matches("cannot reach leader").count(),
        1,
        "{}",
        stranger.admin_log()
    );
    let members = leader.connect().members().unwrap();
    assert_eq!(members.len(), 1, "{members:?}");
    assert_eq!(stranger.connect().members().unwrap().len(), 1);
    let lines = leader.admin_log().matches("refused").count();
    assert_eq!(lines, 1, "{}", leader.admin_log());
    assert!(
        leader
            .admin_log()
            .contains("does not hold this convention's secret"),
        "{}",
        leader.admin_log()
    );
    stranger.shutdown();
    leader.shutdown();
}

/// Open a link to `to` as an admin with another secret would, and wait until it is closed.
fn wrong_secret_handshake(to: &str) {
    let params = "Noise_NNpsk0_25519_AESGCM_BLAKE2s".parse().unwrap();
    let mut initiator = snow::Builder::new(params)
        .psk(0, &[7u8; 32])
        .unwrap()
        .prologue(b"greenroom convention 1")
        .unwrap()
        .build_initiator()
        .unwrap();
    let mut msg = [0u8; 256];
    let n = initiator.write_message(&[], &mut msg).unwrap();
    let mut c = TcpStream::connect(to).unwrap();
    c.write_all(&(n as u16).to_be_bytes()).unwrap();
    c.write_all(&msg[..n]).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 256];
    assert!(
        matches!(c.read(&mut buf), Ok(0) | Err(_)),
        "a peer with the wrong secret got an answer"
    );
}

#[test]
fn garbage_and_silence_on_the_convention_port_change_nothing() {
    let s = secret();
    let leader = member(&s.path, "127.0.0.10:0", &[]);
    let la = address(&mut leader.connect());
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut garbage = Vec::new();
    for round in 0..40 {
        let mut c = TcpStream::connect(&la).unwrap();
        let len = (next() % 300) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if round % 4 == 0 {
            // A length that promises a whole Noise message, then nothing.
            bytes = vec![0xff, 0xff, 1, 2, 3];
        }
        let _ = c.write_all(&bytes);
        garbage.push(c);
    }
    // Connections that never say anything, beyond the number allowed to be in handshake.
    let silent: Vec<TcpStream> = (0..80).map(|_| TcpStream::connect(&la).unwrap()).collect();
    // Every one of them is closed by the leader, in bounded time.
    for mut c in garbage.into_iter().chain(silent) {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 256];
        loop {
            match c.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
    // Each was counted: 40 with garbage, 80 silent (64 timed out, 16 over the limit at once).
    let refused = leader
        .connect()
        .system_status()
        .unwrap()
        .counters
        .links_refused;
    assert_eq!(refused, 120, "{}", leader.admin_log());
    // A real member still joins, and the leader still serves.
    let member = member(&s.path, "127.0.0.11:0", &[&la]);
    let ma = address(&mut member.connect());
    wait_sees(&mut leader.connect(), &[&la, &ma], &[]);
    assert!(
        leader.admin_log().matches("refused").count() <= 2,
        "{}",
        leader.admin_log()
    );
    for mut m in [member, leader] {
        m.shutdown();
    }
}

#[test]
fn capabilities_change_at_run_time_and_the_others_hear() {
    let s = secret();
    let leader = member(&s.path, "127.0.0.12:0", &[]);
    let la = address(&mut leader.connect());
    let m = member_with(
        &s.path,
        "127.0.0.13:0",
        &[&la],
        &["--capability", "zone=north"],
    );
    let ma = address(&mut m.connect());
    let mut l = leader.connect();
    let caps_of = |l: &mut ActorSystem| {
        l.members()
            .unwrap()
            .into_iter()
            .find(|x| x.address == ma)
            .map(|x| x.capabilities)
            .unwrap_or_default()
    };
    wait_for("the leader to see zone=north", || {
        caps_of(&mut l).get("zone").map(String::as_str) == Some("north")
    });
    m.cli_ok(&["capability", "set", "gpu", "yes"]);
    wait_for("the leader to see gpu=yes", || {
        caps_of(&mut l).get("gpu").map(String::as_str) == Some("yes")
    });
    m.cli_ok(&["capability", "unset", "zone"]);
    wait_for("the leader to see zone gone", || {
        !caps_of(&mut l).contains_key("zone")
    });
    let err = m.cli_err(&["capability", "set", "greenroom.cores", "64"]);
    assert!(err.contains("read-only"), "{err}");
    // What peers would refuse to hear is refused here.
    let long = "x".repeat(2000);
    let err = m.cli_err(&["capability", "set", "notes", &long]);
    assert!(err.contains("at most 1024"), "{err}");
    assert_eq!(
        caps_of(&mut l).get("greenroom.cores"),
        m.connect()
            .members()
            .unwrap()
            .iter()
            .find(|x| x.address == ma)
            .unwrap()
            .capabilities
            .get("greenroom.cores")
    );
    // A system in no convention says how to join one.
    let plain = TestSystem::start();
    let err = plain.cli_err(&["members"]);
    assert!(err.contains("--listen"), "{err}");
    let err = plain.cli_err(&["capability", "set", "a", "b"]);
    assert!(err.contains("not in a convention"), "{err}");
    drop(l);
    for mut sys in [plain, m, leader] {
        sys.shutdown();
    }
}

#[test]
fn convention_settings_that_cannot_work_are_refused_before_starting() {
    let s = secret();
    let sys = TestSystem::empty();
    let secret = s.path.to_str().unwrap();
    let long_capability = format!("notes={}", "x".repeat(2000));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--listen", "127.0.0.14:0"], "greenroom secret new"),
        (vec!["--convention", "127.0.0.2:7000"], "need --listen"),
        (
            vec!["--listen", "0.0.0.0:0", "--secret-file", secret],
            "names no address",
        ),
        (
            vec!["--listen", "nowhere", "--secret-file", secret],
            "is not HOST:PORT",
        ),
        (
            vec![
                "--listen",
                "127.0.0.14:0",
                "--secret-file",
                secret,
                "--capability",
                "greenroom.os=plan9",
            ],
            "read-only",
        ),
        (
            vec![
                "--listen",
                "127.0.0.14:0",
                "--secret-file",
                secret,
                "--capability",
                "novalue",
            ],
            "KEY=VALUE",
        ),
        (
            vec![
                "--listen",
                "127.0.0.14:0",
                "--secret-file",
                secret,
                "--capability",
                &long_capability,
            ],
            "at most 1024",
        ),
    ];
    for (flags, expected) in cases {
        let mut args = vec!["start"];
        args.extend(flags.iter().copied());
        let out = sys
            .command(&bin("greenroom"))
            .args(&args)
            .env_remove("GREENROOM_SECRET_FILE")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    // A secret others may read, or reached through a link.
    let dir = tempfile::tempdir().unwrap();
    let open = dir.path().join("open");
    std::fs::copy(&s.path, &open).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&s.path, &link).unwrap();
    for (path, expected) in [(&open, "chmod 600"), (&link, "symbolic link")] {
        let err = sys.cli_err(&[
            "start",
            "--listen",
            "127.0.0.14:0",
            "--secret-file",
            path.to_str().unwrap(),
        ]);
        assert!(err.contains(expected), "{err}");
    }
    // `secret new` does not overwrite.
    let err = sys.cli_err(&["secret", "new", secret]);
    assert!(err.contains("already exists"), "{err}");
    assert!(!sys.dir.exists(), "no system was started");
}

/// Two network namespaces of this test's own, joined by a veth pair (`10.77.0.1` in the first,
/// `10.77.0.2` in the second), deleted when dropped.
struct Namespaces {
    a: String,
    b: String,
    link_b: String,
}

impl Namespaces {
    /// `None` (with a message saying why the test skips) unless this runs as root with `ip`.
    fn new() -> Option<Namespaces> {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipping: cutting a member off needs root, to create network namespaces");
            return None;
        }
        let tag = std::process::id() % 100_000;
        let ns = Namespaces {
            a: format!("grtest{tag}a"),
            b: format!("grtest{tag}b"),
            link_b: format!("gr{tag}b"),
        };
        let link_a = format!("gr{tag}a");
        let steps: Vec<Vec<&str>> = vec![
            vec!["netns", "add", &ns.a],
            vec!["netns", "add", &ns.b],
            vec![
                "link", "add", &link_a, "type", "veth", "peer", "name", &ns.link_b,
            ],
            vec!["link", "set", &link_a, "netns", &ns.a],
            vec!["link", "set", &ns.link_b, "netns", &ns.b],
            vec!["-n", &ns.a, "addr", "add", "10.77.0.1/24", "dev", &link_a],
            vec![
                "-n",
                &ns.b,
                "addr",
                "add",
                "10.77.0.2/24",
                "dev",
                &ns.link_b,
            ],
            vec!["-n", &ns.a, "link", "set", &link_a, "up"],
            vec!["-n", &ns.b, "link", "set", &ns.link_b, "up"],
            vec!["-n", &ns.a, "link", "set", "lo", "up"],
            vec!["-n", &ns.b, "link", "set", "lo", "up"],
        ];
        for step in steps {
            match std::process::Command::new("ip").args(&step).output() {
                Ok(out) if out.status.success() => {}
                Ok(out) => panic!("ip {step:?}: {}", String::from_utf8_lossy(&out.stderr)),
                Err(e) => {
                    eprintln!("skipping: cannot run `ip` to create network namespaces: {e}");
                    return None;
                }
            }
        }
        Some(ns)
    }

    /// `greenroom-admin`, run inside namespace `ns`.
    fn admin_in(&self, ns: &str) -> std::process::Command {
        let mut c = std::process::Command::new("ip");
        c.args(["netns", "exec", ns]).arg(bin("greenroom-admin"));
        c
    }

    /// Take the second namespace's end of the link down (`up: false`), or back up.
    fn link_b(&self, up: bool) {
        let state = if up { "up" } else { "down" };
        let out = std::process::Command::new("ip")
            .args(["-n", &self.b, "link", "set", &self.link_b, state])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", ns])
                .output();
        }
    }
}

#[test]
fn a_member_cut_off_by_the_network_is_gone_and_rejoins_when_it_is_back() {
    let Some(ns) = Namespaces::new() else {
        return;
    };
    let s = secret();
    let secret = s.path.to_str().unwrap();
    let start = |namespace: &str, listen: &str, leader: Option<&str>| {
        let mut sys = TestSystem::empty();
        let mut args = vec!["--listen", listen, "--secret-file", secret];
        if let Some(l) = leader {
            args.extend(["--convention", l]);
        }
        sys.start_admin_as(ns.admin_in(namespace), &args, &[]);
        sys
    };
    let leader = start(&ns.a, "10.77.0.1:0", None);
    let la = address(&mut leader.connect());
    let observer = start(&ns.a, "10.77.0.1:0", Some(&la));
    let far = start(&ns.b, "10.77.0.2:0", Some(&la));
    let fa = address(&mut far.connect());
    let mut o = observer.connect();
    wait_sees(&mut o, &[&la, &fa], &[]);

    // No connection closes: the far member simply stops being heard.
    ns.link_b(false);
    wait_sees(&mut o, &[&la], &[&fa]);
    ns.link_b(true);
    wait_sees(&mut o, &[&la, &fa], &[]);
    drop(o);
    for mut m in [far, observer, leader] {
        m.shutdown();
    }
}

/// `greenroom start` with convention flags, in a directory of its own: its output, and the
/// system (whose background admin this test process adopts).
fn cli_start(flags: &[&str]) -> (String, TestSystem, u32) {
    let sys = TestSystem::empty();
    let mut args = vec!["start"];
    args.extend(flags);
    let out = sys.cli_ok(&args);
    let pid: u32 = std::fs::read_to_string(sys.dir.join("admin.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    sys.remember(pid);
    (out, sys, pid)
}

#[test]
fn greenroom_start_returns_once_a_leader_has_linked_to_the_member() {
    let s = secret();
    let secret = s.path.to_str().unwrap();
    let (out, leader, leader_pid) =
        cli_start(&["--listen", "127.0.0.25:0", "--secret-file", secret]);
    let la = out
        .lines()
        .find_map(|l| l.strip_prefix("convention address "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in: {out}"))
        .to_string();
    assert!(
        !out.contains("joined"),
        "a lone leader waits for no one: {out}"
    );
    let (out, member, member_pid) = cli_start(&[
        "--listen",
        "127.0.0.26:0",
        "--secret-file",
        secret,
        "--convention",
        &la,
    ]);
    assert!(
        out.contains("joined the convention: 2 members alive"),
        "{out}"
    );
    // `members` right after `start` already lists both.
    let listed = member.cli_ok(&["members"]);
    assert_eq!(listed.matches("alive").count(), 2, "{listed}");
    for (sys, pid) in [(member, member_pid), (leader, leader_pid)] {
        assert!(sys.cli_ok(&["shutdown"]).contains("shut down"));
        crate::support::wait_gone(pid);
        sys.assert_nothing_left();
    }
}

/// A link to `to` that completes the handshake with `key` (a holder of the secret), then
/// sends `plain` encrypted as one or more transport messages; returns whether the admin closed
/// the link (reading EOF within 10 s).
pub(crate) fn authenticated_garbage(to: &str, key: &[u8; 32], plain: &[u8]) -> bool {
    let (mut c, mut t) = noise_link(to, key);
    let mut msg = vec![0u8; 65535];
    for chunk in plain.chunks(65000) {
        let n = t.write_message(chunk, &mut msg).unwrap();
        if c.write_all(&(n as u16).to_be_bytes()).is_err() || c.write_all(&msg[..n]).is_err() {
            return true;
        }
    }
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn a_peer_with_the_secret_that_sends_garbage_loses_its_link_and_nothing_else() {
    let s = secret();
    let key = s.key();
    let leader = member(&s.path, "127.0.0.27:0", &[]);
    let la = address(&mut leader.connect());
    let good = member(&s.path, "127.0.0.28:0", &[&la]);
    let ga = address(&mut good.connect());
    let mut l = leader.connect();
    wait_sees(&mut l, &[&la, &ga], &[]);
    let frame = |body: &[u8]| {
        let mut f = (body.len() as u32).to_be_bytes().to_vec();
        f.extend_from_slice(body);
        f
    };
    let hello = |address: &str| {
        rmp_serde::to_vec_named(&serde_json::json!({"Hello": {
            "version": 1, "system": "x", "address": address, "capabilities": {}
        }}))
        .unwrap()
    };
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let random: Vec<u8> = (0..3000).map(|_| next() as u8).collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("random bytes", random),
        (
            "a length header that lies",
            (u32::MAX - 1).to_be_bytes().to_vec(),
        ),
        ("a frame that is not MessagePack", frame(&[0xc1; 40])),
        (
            "something other than Hello first",
            frame(&rmp_serde::to_vec_named(&"Heartbeat").unwrap()),
        ),
        ("the leader's own address", frame(&hello(&la))),
        ("an address that is not IP:PORT", frame(&hello("nowhere"))),
        ("a capability name of 2000 bytes", {
            let mut caps = serde_json::Map::new();
            caps.insert("x".repeat(2000), serde_json::json!("v"));
            frame(
                &rmp_serde::to_vec_named(&serde_json::json!({"Hello": {
                    "version": 1, "system": "x", "address": "127.0.0.29:1", "capabilities": caps
                }}))
                .unwrap(),
            )
        }),
    ];
    for (what, plain) in cases {
        assert!(
            authenticated_garbage(&la, &key, &plain),
            "the link stayed open after {what}"
        );
    }
    // The leader still serves, the good member is still alive, no stranger was listed.
    let members = l.members().unwrap();
    assert_eq!(members.len(), 2, "{members:?}");
    assert_eq!(state(&members, &ga), Some(MemberState::Alive));
    drop(l);
    for mut m in [good, leader] {
        m.shutdown();
    }
}
