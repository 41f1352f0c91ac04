//! What is wrong with a user certificate, judged from its own fields:
//! its validity window against the clock, its type, and its principals
//! against the login user.
//!
//! Design choice: only the certificate is read (no CA, no server
//! configuration), so a verdict says what the certificate itself rules
//! out; a server may still refuse a certificate that passes here.

use russh::keys::Certificate;
use warren_wire::escape_str;

/// Why `cert` cannot log `user` in at `now` (seconds since the epoch),
/// or `None` when its own fields allow it.
pub fn certificate_problem(cert: &Certificate, user: &str, now: u64) -> Option<String> {
    window_problem(cert.valid_after(), cert.valid_before(), now)
        .or_else(|| (!cert.cert_type().is_user()).then(|| "is a host certificate".to_owned()))
        .or_else(|| principal_problem(cert.valid_principals(), user))
}

/// The validity window `[after, before)` against `now`.
fn window_problem(after: u64, before: u64, now: u64) -> Option<String> {
    if now >= before {
        return Some(format!("expired {} UTC", utc(before)));
    }
    if now < after {
        return Some(format!("is not valid before {} UTC", utc(after)));
    }
    None
}

/// The principals against the login user (sshd refuses a certificate
/// that names no principal unless AuthorizedPrincipalsFile says otherwise).
fn principal_problem(principals: &[String], user: &str) -> Option<String> {
    if principals.is_empty() {
        return Some("names no principal".to_owned());
    }
    if principals.iter().any(|p| p == user) {
        return None;
    }
    let names: Vec<String> = principals
        .iter()
        .map(|p| escape_str(p).into_owned())
        .collect();
    Some(format!(
        "is for principal(s) {}, not the login user {}",
        names.join(","),
        escape_str(user)
    ))
}

/// `secs` since the epoch as `YYYY-MM-DD HH:MM`.
fn utc(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// Days since 1970-01-01 as a (year, month, day) in the Gregorian
/// calendar (Howard Hinnant's algorithm, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(utc(0), "1970-01-01 00:00");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00");
        assert_eq!(utc(1_796_601_600 + 3_660), "2026-12-07 01:01");
        // OpenSSH's "forever".
        assert!(utc(u64::MAX).starts_with('5'), "{}", utc(u64::MAX));
    }

    #[test]
    fn window_table() {
        let cases = [
            (0, u64::MAX, 1000, None),
            (0, 1000, 1000, Some("expired 1970-01-01 00:16 UTC")),
            (0, 999, 1000, Some("expired 1970-01-01 00:16 UTC")),
            (
                2000,
                u64::MAX,
                1000,
                Some("is not valid before 1970-01-01 00:33 UTC"),
            ),
        ];
        for (after, before, now, want) in cases {
            assert_eq!(
                window_problem(after, before, now).as_deref(),
                want,
                "{after} {before} {now}"
            );
        }
    }

    #[test]
    fn principals_table() {
        let s = |v: &[&str]| v.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>();
        assert_eq!(principal_problem(&s(&["bob"]), "bob"), None);
        assert_eq!(principal_problem(&s(&["alice", "bob"]), "bob"), None);
        assert_eq!(
            principal_problem(&s(&["alice", "ops\x1b"]), "bob").as_deref(),
            Some("is for principal(s) alice,ops\\e, not the login user bob")
        );
        assert_eq!(
            principal_problem(&[], "bob").as_deref(),
            Some("names no principal")
        );
    }
}
