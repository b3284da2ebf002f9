use super::*;

fn heard(address: &str, ago_ms: u64) -> Heard {
    Heard {
        address: address.into(),
        system: format!("sys-{address}"),
        capabilities: BTreeMap::new(),
        ago_ms,
    }
}

fn view(me: &str) -> View {
    View::new(heard(me, 0))
}

fn states(v: &View) -> Vec<(String, MemberState)> {
    v.members(0)
        .into_iter()
        .map(|m| (m.address, m.state))
        .collect()
}

fn link(v: &mut View, peer: &str, now: u64) {
    v.linked(peer, format!("sys-{peer}"), BTreeMap::new(), now);
}

#[test]
fn a_member_hears_of_the_others_through_the_leaders_view() {
    let mut m = view("m1");
    link(&mut m, "l", 10);
    m.viewed(
        "l",
        vec![heard("l", 0), heard("m1", 5), heard("m2", 40)],
        100,
    );
    assert_eq!(
        m.refresh(),
        [Change::Joined("l".into()), Change::Joined("m2".into())]
    );
    let all = m.members(150);
    let m2 = all.iter().find(|x| x.address == "m2").unwrap();
    assert_eq!(
        (m2.state, m2.last_heard_ms, m2.system.as_str()),
        (MemberState::Alive, 90, "sys-m2")
    );
    // Itself is listed once, alive, whatever others say of it.
    assert_eq!(all.iter().filter(|x| x.address == "m1").count(), 1);
    assert!(m.refresh().is_empty(), "nothing changed");
}

#[test]
fn what_a_lost_link_reported_goes_with_it_unless_another_link_says_so() {
    let mut m = view("m1");
    link(&mut m, "l1", 0);
    link(&mut m, "l2", 0);
    m.viewed(
        "l1",
        vec![heard("l1", 0), heard("m2", 0), heard("m3", 0)],
        0,
    );
    m.viewed("l2", vec![heard("l2", 0), heard("m2", 0)], 0);
    m.refresh();
    m.unlinked("l1");
    let changes = m.refresh();
    assert_eq!(
        changes,
        [Change::Left("l1".into()), Change::Left("m3".into())]
    );
    assert_eq!(
        states(&m),
        [
            ("l1".into(), MemberState::Gone),
            ("l2".into(), MemberState::Alive),
            ("m1".into(), MemberState::Alive),
            ("m2".into(), MemberState::Alive),
            ("m3".into(), MemberState::Gone),
        ]
    );
    // A member that comes back is announced again.
    link(&mut m, "l1", 50);
    assert_eq!(m.refresh(), [Change::Joined("l1".into())]);
}

#[test]
fn silent_links_are_named_and_capability_changes_are_noticed() {
    let mut l = view("l");
    link(&mut l, "a", 0);
    link(&mut l, "b", 0);
    l.heard("a", 900);
    assert_eq!(l.silent_since(500), ["b"]);
    l.refresh();
    let mut caps = BTreeMap::new();
    caps.insert("gpu".to_string(), "yes".to_string());
    let own = Heard {
        capabilities: caps.clone(),
        ..heard("a", 0)
    };
    l.viewed("a", vec![own], 1000);
    assert_eq!(l.refresh(), [Change::Capabilities("a".into())]);
    let first = l.first_hand(1000);
    assert_eq!(first[0].address, "l");
    assert_eq!(first[1].capabilities, caps);
    assert_eq!((first[2].address.as_str(), first[2].ago_ms), ("b", 1000));
}
