//! Who this process is, in a form another process can check: `w:<host>:<pidns>:<boot>:<pid>:<start>`.
//! Leaf module: no other module of the crate is imported here.
//!
//! An outbox lease names its worker by this identity. A process on the same machine and in
//! the same PID namespace (the same container, or the same host) can then *prove* the holder
//! dead: its pid is gone, or now belongs to a process that started at another time. Such leases
//! are released at once instead of waiting for them to expire (a `kill -9`, then a restart, no
//! longer costs a whole lease). Where the proof is impossible (another host or container, no
//! `/proc`), the answer is "unknown" and the lease runs its course.

/// This process's identity.
pub fn this_process() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let pid = std::process::id();
    format!(
        "w:{}:{}:{}:{pid}:{}",
        clean(&host),
        pid_namespace().unwrap_or_default(),
        boot_id().unwrap_or_default(),
        start_time(pid).unwrap_or_default()
    )
}

/// `true` only when `owner` is provably a process of this machine and PID namespace that no
/// longer runs. Unknown formats, other machines, other namespaces: `false`.
pub fn is_provably_dead(owner: &str) -> bool {
    let mut parts = owner.split(':');
    let (Some("w"), Some(_host), Some(ns), Some(boot), Some(pid), Some(start), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let (Some(our_ns), Some(our_boot)) = (pid_namespace(), boot_id()) else {
        return false;
    };
    if ns.is_empty() || boot.is_empty() || start.is_empty() || ns != our_ns || boot != our_boot {
        return false;
    }
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    match start_time(pid) {
        None => true, // no such process
        Some(now) => now != start,
    }
}

fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The PID namespace's inode (`pid:[4026531836]` → `4026531836`).
fn pid_namespace() -> Option<String> {
    let link = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let text = link.to_string_lossy();
    Some(clean(
        text.trim_start_matches("pid:[").trim_end_matches(']'),
    ))
}

/// The first 8 characters of the kernel's boot id: the same pid after a reboot is another
/// process.
fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(clean(id.trim()).chars().take(8).collect())
}

/// A process's start time (clock ticks since boot, field 22 of `/proc/<pid>/stat`); `None` if
/// there is no such process.
fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from its closing one.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_an_exited_child_is_dead() {
        let me = this_process();
        assert!(!is_provably_dead(&me), "{me}");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = start_time(pid);
        child.wait().unwrap();
        let parts: Vec<&str> = me.split(':').collect();
        let theirs = format!(
            "w:{}:{}:{}:{pid}:{}",
            parts[1],
            parts[2],
            parts[3],
            start.unwrap_or_else(|| "1".into())
        );
        assert!(is_provably_dead(&theirs), "{theirs}");
    }

    #[test]
    fn a_reused_pid_is_another_process() {
        let me = this_process();
        let mut parts: Vec<String> = me.split(':').map(String::from).collect();
        parts[5] = "1".into(); // our pid, started at another time
        assert!(is_provably_dead(&parts.join(":")));
    }

    #[test]
    fn other_machines_namespaces_and_formats_are_never_judged() {
        let me = this_process();
        let mut other_ns: Vec<String> = me.split(':').map(String::from).collect();
        other_ns[2] = "1".into();
        other_ns[5] = "1".into();
        assert!(!is_provably_dead(&other_ns.join(":")));
        let mut other_boot: Vec<String> = me.split(':').map(String::from).collect();
        other_boot[3] = "deadbeef".into();
        other_boot[5] = "1".into();
        assert!(!is_provably_dead(&other_boot.join(":")));
        assert!(!is_provably_dead("green-7-1234"), "the old owner format");
        assert!(!is_provably_dead(""));
    }
}
